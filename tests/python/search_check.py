#!/usr/bin/env python3
"""numpy's exact top-k, to check penin's search against: README, "penin search".

  search_check.py INPUT   INPUT is a JSON object {"keys": [...], "vectors": [[...], ...],
                          "queries": [[...], ...], "k": K}. For every query and every metric
                          (cosine, dot, l2), numpy scores the vectors of the query's length:
                          cosine on the matrix of normalised rows (rows of norm 0 left out),
                          the query normalised; dot on the matrix as it is; l2 as the norm of
                          the differences. The best K come from np.argpartition (with every score
                          equal to the K-th), then a sort (score, then key, as penin ranks
                          ties). Prints one JSON line:
                          {"cosine": [[[key, score], ...] per query], "dot": ..., "l2": ...}.

Exit 3 when numpy is not installed (.ci/run installs it with pip).
"""
import json, sys

try:
    import numpy as np
except ImportError:
    print("the numpy package is not installed (pip install numpy)", file=sys.stderr)
    sys.exit(3)


def top(keys, scores, k, largest):
    """The best k of scores (NaN never), by argpartition then a sort."""
    keys = np.asarray(keys)
    keep = ~np.isnan(scores)
    keys, scores = keys[keep], scores[keep]
    order = -scores if largest else scores
    k = min(k, len(scores))
    if k == 0:
        return []
    best = np.argpartition(order, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    # argpartition picks any of the scores equal to the k-th: take them all, so that the
    # sort by key decides among them.
    best = np.flatnonzero(order <= order[best].max())
    ranked = sorted(best, key=lambda i: (order[i], keys[i]))[:k]
    return [[str(keys[i]), float(scores[i])] for i in ranked]


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    k = data["k"]
    out = {"cosine": [], "dot": [], "l2": []}
    for q in data["queries"]:
        q = np.asarray(q, dtype=np.float64)
        rows = [i for i, v in enumerate(data["vectors"]) if len(v) == len(q)]
        keys = [data["keys"][i] for i in rows]
        m = np.asarray([data["vectors"][i] for i in rows], dtype=np.float64).reshape(len(rows), len(q))
        norms = np.linalg.norm(m, axis=1)
        nonzero = norms != 0
        normalised = m[nonzero] / norms[nonzero][:, None]
        cosine = normalised @ (q / np.linalg.norm(q))
        out["cosine"].append(top([k_ for k_, z in zip(keys, nonzero) if z], cosine, k, True))
        out["dot"].append(top(keys, m @ q, k, True))
        out["l2"].append(top(keys, np.linalg.norm(m - q, axis=1), k, False))
    json.dump(out, sys.stdout)
    print()


main()
