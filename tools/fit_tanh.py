#!/usr/bin/env python3
"""Fit the rational approximation of tanh used by include/tessel/ops/vector_math.hpp.

    tanh(x) ~ x P(z) / Q(z),  z = x^2,  P = 1 + p1 z + ... + p6 z^6,  Q = 1 + q1 z + ... + q4 z^4

on [0, 9] (tanh rounds to 1 in float beyond 9), minimising the relative error. A Levenberg-
Marquardt least-squares fit is repeated with weights that grow where the error is largest (a
Lawson-style step towards equal ripple). Side tooling (numpy and scipy); the library only holds
the printed coefficients. Prints them and the maximum relative error in double precision; the
float error over all 2^32 inputs is measured by the C++ test and docs/nn_conv.md.

  /usr/bin/python3 tools/fit_tanh.py
"""
import numpy as np
from scipy.optimize import least_squares

CAP = 9.0
NUMERATOR_TERMS = 7    # 1, p1 .. p6
DENOMINATOR_TERMS = 4  # q1 .. q4


def main():
    # Points dense near 0 and at the cap, where the relative error is hardest to hold.
    x = CAP * (1 - np.cos(np.linspace(0, np.pi / 2, 8000)))[1:]
    z = x * x
    f = np.tanh(x)
    m = NUMERATOR_TERMS

    def model(th):
        p = np.concatenate([[1.0], th[: m - 1]])
        q = np.concatenate([[1.0], th[m - 1:]])
        return x * np.polyval(p[::-1], z) / np.polyval(q[::-1], z)

    # Start from the first continued-fraction step, tanh x ~ x / (1 + z / 3).
    th = np.zeros(m - 1 + DENOMINATOR_TERMS)
    th[m - 1] = 1.0 / 3.0
    w = np.ones_like(z)
    for _ in range(25):
        th = least_squares(lambda t: w * (model(t) - f) / f, th, method="lm", xtol=1e-15, ftol=1e-15,
                           max_nfev=20000).x
        e = np.abs(model(th) - f) / f
        w = w * np.sqrt(e / e.mean())
        w /= w.mean()
    q = np.concatenate([[1.0], th[m - 1:]])
    assert np.all(np.polyval(q[::-1], z) > 0), "the denominator has a root on [0, cap]"
    print("max relative error (double): %.3e" % e.max())
    print("P (p1 .. p6):", ", ".join("%.10e" % v for v in th[: m - 1]))
    print("Q (q1 .. q4):", ", ".join("%.10e" % v for v in th[m - 1:]))


if __name__ == "__main__":
    main()
