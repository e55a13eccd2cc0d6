#!/usr/bin/env python3
"""bench/faq/compare_dumps.py A B: compares two FAQ_EVAL_DUMP files of
bench/faq/faq_eval (docs/faq.md "Figures"): per query the hit count, the set
of hits (a checksum of their ids), the top 10 in order, and the scores
(the top 10 and the sum of all) within a relative tolerance (1e-6).
Prints the differences and a summary; exit status 1 when any."""
import sys


def load(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            top = [(int(c.split(":")[0]), float(c.split(":")[1])) for c in cols[4:]]
            rows[cols[0]] = (int(cols[1]), cols[2], float(cols[3]), top)
    return rows


def close(x, y, tol=1e-6):
    return abs(x - y) <= tol * max(abs(x), abs(y), 1e-300)


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    bad = worst = 0
    for q in sorted(set(a) | set(b)):
        if q not in a or q not in b:
            print(f"{q}: only in one file")
            bad += 1
            continue
        (na, ia, sa, ta), (nb, ib, sb, tb) = a[q], b[q]
        why = []
        if na != nb:
            why.append(f"count {na} / {nb}")
        if ia != ib:
            why.append("hit set differs")
        if [i for i, _ in ta] != [i for i, _ in tb]:
            why.append(f"top 10 {[i for i, _ in ta]} / {[i for i, _ in tb]}")
        for (_, x), (_, y) in zip(ta, tb):
            if x or y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
            if not close(x, y):
                why.append(f"score {x!r} / {y!r}")
                break
        if not close(sa, sb):
            why.append(f"score sum {sa!r} / {sb!r}")
        if why:
            bad += 1
            print(f"{q}: " + "; ".join(why))
    print(f"{len(a)} queries, {bad} differ; largest relative difference of a top-10 score {worst:.3g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
