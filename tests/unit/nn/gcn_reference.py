# Fixture values for tests/unit/nn/test_gcn.cpp: PyTorch Geometric's GCNConv on a small weighted,
# asymmetric graph with one existing self-loop (weight 2.5, kept by add_remaining_self_loops) and
# four nodes without one (filled with weight 1). Run with /usr/bin/python3 (torch 1.13, and
# torch_geometric 2.3.1 installed with `pip install --no-deps torch_geometric==2.3.1`: 2.0.4, the
# version UnSegGNet pins, needs the compiled torch_sparse, which does not build here; gcn_norm's
# arithmetic is the same in both). Prints C++ initialisers.
import torch
from torch_geometric.nn import GCNConv

torch.set_default_dtype(torch.float64)
N, FIN, FOUT = 5, 3, 2
# A[j, i] = weight of the arc j -> i (source j, target i)
A = torch.zeros(N, N)
arcs = [(0, 1, 1.0), (1, 0, 0.5), (1, 2, 2.0), (2, 2, 2.5), (3, 1, 1.5), (4, 3, 0.25), (2, 4, 1.0), (0, 4, 3.0)]
for j, i, w in arcs:
    A[j, i] = w
x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-2.0, 1.0, 0.75], [0.0, 0.5, 1.0], [1.0, -1.5, 0.25]])
W = torch.tensor([[0.3, -0.2, 0.5], [-0.4, 0.1, 0.25]])
b = torch.tensor([0.125, -0.0625])

conv = GCNConv(FIN, FOUT)
with torch.no_grad():
    conv.lin.weight.copy_(W)
    conv.bias.copy_(b)
idx = A.nonzero().t()  # rows: source j, target i
w = A[idx[0], idx[1]]
out = conv(x, idx, w)

def fmt(t):
    return ", ".join(repr(float(v)) for v in t.flatten())

print("// arcs (source, target, weight):", arcs)
print("const double expected[] = {" + fmt(out) + "};")
