"""The numpy figure beside the `gradient_step` bench: one act + learn of a
linear-softmax REINFORCE learner (running-mean baseline, constant step
size), written per step as a numpy user would, on the same sizes.

    python3 benches/reference/numpy_step.py

Prints the best of several timed blocks per size (ns per act + learn).
"""
import time

import numpy as np


def step_loop(k, d, iters, rng):
    theta = np.zeros((k, d))
    xs = rng.standard_normal((64, d))
    rewards = np.array([(i % 3) * 0.5 for i in range(64)])
    baseline, n, alpha = 0.0, 0, 0.01
    start = time.perf_counter()
    for i in range(iters):
        x = xs[i & 63]
        z = theta @ x
        z -= z.max()
        p = np.exp(z)
        p /= p.sum()
        # Inverse CDF with one uniform, as the crate samples.
        a = min(int(np.searchsorted(np.cumsum(p), rng.random(), side="right")), k - 1)
        r = rewards[i & 63]
        n += 1
        baseline += (r - baseline) / n
        g = -p
        g[a] += 1.0
        theta += (alpha * (r - baseline)) * np.outer(g, x)
    return (time.perf_counter() - start) / iters * 1e9


def main():
    rng = np.random.default_rng(2)
    for k, d in [(10, 1), (10, 16), (100, 64)]:
        best = min(step_loop(k, d, 20_000, rng) for _ in range(5))
        print(f"numpy act+learn (K, d) = ({k}, {d}): {best / 1000:.1f} us")


if __name__ == "__main__":
    main()
