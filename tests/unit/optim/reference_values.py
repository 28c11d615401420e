# Independent reference sequences for tests/unit/optim/test_optim.cpp, in plain Python (double
# precision), following the update rules of torch.optim.SGD / Adam / AdamW as documented
# (pytorch.org/docs/stable/generated/torch.optim.*.html; METHODS.md 1.2).
# Run: python3 tests/unit/optim/reference_values.py
import math

p0 = [1.0, -2.0, 0.5]
grads = [[0.1, -0.2, 0.3], [-0.5, 0.4, 0.0], [0.25, 0.25, -1.0]]

def sgd(lr, momentum=0.0, dampening=0.0, wd=0.0, nesterov=False):
    p = list(p0); buf = None
    for g in grads:
        d = [gi + wd * pi for gi, pi in zip(g, p)]
        if momentum != 0:
            buf = list(d) if buf is None else [momentum * b + (1 - dampening) * di for b, di in zip(buf, d)]
            d = [di + momentum * b for di, b in zip(d, buf)] if nesterov else buf
        p = [pi - lr * di for pi, di in zip(p, d)]
    return p

def adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    p = list(p0); m = [0.0] * 3; v = [0.0] * 3
    for t, g in enumerate(grads, start=1):
        g = list(g)
        if decoupled:
            p = [pi * (1 - lr * wd) for pi in p]
        elif wd != 0:
            g = [gi + wd * pi for gi, pi in zip(g, p)]
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        bc1 = 1 - b1 ** t; bc2 = 1 - b2 ** t
        p = [pi - (lr / bc1) * mi / (math.sqrt(vi) / math.sqrt(bc2) + eps) for pi, mi, vi in zip(p, m, v)]
    return p

print("sgd plain      ", [repr(x) for x in sgd(0.1)])
print("sgd momentum   ", [repr(x) for x in sgd(0.1, momentum=0.9)])
print("sgd dampening  ", [repr(x) for x in sgd(0.1, momentum=0.9, dampening=0.5)])
print("sgd nesterov wd", [repr(x) for x in sgd(0.1, momentum=0.9, wd=0.1, nesterov=True)])
print("adam           ", [repr(x) for x in adam(0.1)])
print("adam wd        ", [repr(x) for x in adam(0.1, wd=0.1)])
print("adamw default  ", [repr(x) for x in adam(0.1, wd=0.01, decoupled=True)])
print("adamw wd 0.5   ", [repr(x) for x in adam(0.1, wd=0.5, decoupled=True, b1=0.8, b2=0.99, eps=1e-3)])
