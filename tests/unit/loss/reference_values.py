# Independent reference values for tests/unit/loss/test_losses.cpp, in plain Python (double
# precision, no numpy/torch), written from PyTorch's documented formulas (METHODS.md 1.2, 2.3).
# Run: python3 tests/unit/loss/reference_values.py
import math

def logsumexp(v):
    m = max(v)
    return m + math.log(sum(math.exp(x - m) for x in v))

# logits [N=1, C=3, H=2, W=2], row-major NCHW
z = [0.5, -1.0, 2.0, 0.0,
     1.5, 0.25, -0.5, 0.0,
     -2.0, 0.75, 1.0, 0.0]
C, S = 3, 4
def pix(s):
    return [z[k * S + s] for k in range(C)]

# hard labels [1,2,2]; pixel 3 ignored (ignore_index = -1)
labels = [1, 2, 0, -1]
terms = [logsumexp(pix(s)) - pix(s)[labels[s]] for s in range(S) if labels[s] != -1]
print("hard CE, one ignored:", repr(sum(terms) / len(terms)))
labels_all = [1, 2, 0, 2]
terms = [logsumexp(pix(s)) - pix(s)[labels_all[s]] for s in range(S)]
print("hard CE, none ignored:", repr(sum(terms) / len(terms)))
# gradient of the one-ignored case at pixel 0, class 0..2: (softmax - onehot) / 3
p0 = [math.exp(x - logsumexp(pix(0))) for x in pix(0)]
print("hard CE grad pixel 0:", [repr((p0[k] - (1 if k == 1 else 0)) / 3) for k in range(C)])

# soft targets: per pixel probabilities along channels
y = [0.2, 0.5, 0.1, 1.0,
     0.3, 0.25, 0.6, 0.0,
     0.5, 0.25, 0.3, 0.0]
terms = [-sum(y[k * S + s] * (pix(s)[k] - logsumexp(pix(s))) for k in range(C)) for s in range(S)]
print("soft CE:", repr(sum(terms) / S))

# continuity on r [N=2, q=1, H=2, W=3] (equal neighbours included)
r = [[[1.0, 3.0, 3.0],
      [0.0, 3.0, -1.0]],
     [[2.0, 2.0, 0.5],
      [2.0, -1.0, 4.0]]]
N, H, W = 2, 2, 3
ly = sum(abs(r[n][y + 1][x] - r[n][y][x]) for n in range(N) for y in range(H - 1) for x in range(W)) / (N * (H - 1) * W)
lx = sum(abs(r[n][y][x + 1] - r[n][y][x]) for n in range(N) for y in range(H) for x in range(W - 1)) / (N * H * (W - 1))
print("continuity:", repr(ly + lx))

# mse
a = [1.0, -2.0, 0.5, 3.0]
b = [0.0, -1.0, 2.0, 3.0]
print("mse:", repr(sum((u - v) ** 2 for u, v in zip(a, b)) / 4))
