#!/usr/bin/env python3
"""bench/faq/eval.py: helpers of bench/bench_faq.sh (docs/faq.md).

  eval.py csv <data folder> <out.csv>
      the corpus (corpus_qa.jsonl) as an FAQ import file (API.md header):
      number = corpus id + 1, published, public. Written outside the repository.
  eval.py run <data folder> <api base URL> <cookie file> <out folder>
      every dev query through GET /api/v1/faqs?q= (one kept-alive connection),
      prints Recall@10, nDCG@10, MRR@10, Hit@1/@5 (grade >= 1 and grade 2) and
      latency p50/p99 (client side, per request) as TSV lines
      "metric<TAB>value" and writes per-query results to <out>/queries.tsv.
  eval.py learn <data folder> <api base URL> <cookie file> <out folder> <csrf token>
          <ids file> <folds> <reset command>
      learning from operators' clicks, measured by k-fold cross-validation
      through the API: for each fold, every query of the OTHER folds is sent
      as a click (POST /api/v1/faqs/{id}/clicks {"q"}) on each FAQ judged
      relevant to it (grade >= 1), the fold's own queries are then searched
      (after the copies have picked up the clicks), and the reset command
      (a shell command, run between folds) forgets the clicks. A query never
      sees its own judgments. <ids file>: "number<TAB>id" lines. Prints the
      same metrics as run, over all folds.

Metrics follow the usual definitions (BEIR / pytrec_eval): gain = grade for
nDCG, Recall@10 = judged relevant (grade >= 1) found in the top 10 / judged
relevant, MRR@10 and Hit@k on the first result with grade >= 1 (or 2).
"""
import csv
import http.client
import json
import math
import os
import sys
import time
import urllib.parse


def make_csv(folder, out):
    with open(os.path.join(folder, "corpus_qa.jsonl"), encoding="utf-8") as f, \
            open(out, "w", encoding="utf-8", newline="") as o:
        w = csv.writer(o, lineterminator="\r\n")
        w.writerow(["number", "question", "answer", "department_code", "category",
                    "visibility", "keywords", "status"])
        n = 0
        for line in f:
            d = json.loads(line)
            w.writerow([int(d["id"]) + 1, d["Question"], d["Answer"], "", "", "public", "",
                        "published"])
            n += 1
    print(n)


def cookie_header(path):
    parts = []
    with open(path) as f:
        for line in f:
            if line.startswith("#HttpOnly_"):
                line = line[len("#HttpOnly_"):]
            elif line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 7:
                parts.append("%s=%s" % (cols[5], cols[6]))
    return "; ".join(parts)


def percentile(values, p):
    values = sorted(values)
    if not values:
        return 0.0
    k = min(len(values) - 1, max(0, int(math.ceil(p / 100.0 * len(values))) - 1))
    return values[k]


class Scores:
    def __init__(self):
        self.sums = dict(recall=0.0, ndcg=0.0, mrr=0.0, hit1=0.0, hit5=0.0, hit1s=0.0,
                         hit5s=0.0)
        self.n = self.strict = 0
        self.latencies = []
        self.rows = []


def run(folder, base, cookies, out):
    queries = json.load(open(os.path.join(folder, "dev_queries.json"), encoding="utf-8"))
    qrels = json.load(open(os.path.join(folder, "dev_qrels.json"), encoding="utf-8"))
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Cookie": cookie_header(cookies)}
    scores = Scores()
    search(conn, url, headers, queries, qrels, lambda qid: True, scores)
    report(scores, out)


def search(conn, url, headers, queries, qrels, wanted, scores):
    sums = scores.sums
    latencies = scores.latencies
    rows = scores.rows
    for qid, text in queries.items():
        rel = qrels.get(qid)
        if not rel or not wanted(qid):
            continue
        path = "%s/faqs?%s" % (url.path, urllib.parse.urlencode(
            {"q": text, "per_page": 10, "log": "false"}))
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        latencies.append((time.perf_counter() - start) * 1000.0)
        if resp.status != 200:
            sys.exit("query %s: HTTP %d %s" % (qid, resp.status, body[:200]))
        items = json.loads(body)["items"][:10]
        ranked = [str(item["number"] - 1) for item in items]
        grades = [rel.get(r, 0) for r in ranked]
        relevant = sum(1 for g in rel.values() if g >= 1)
        found = sum(1 for g in grades if g >= 1)
        ideal = sorted(rel.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(grades))
        first = next((i for i, g in enumerate(grades) if g >= 1), None)
        first_strict = next((i for i, g in enumerate(grades) if g >= 2), None)
        sums["recall"] += found / relevant if relevant else 0
        sums["ndcg"] += dcg / idcg if idcg else 0
        sums["mrr"] += 1.0 / (first + 1) if first is not None else 0
        sums["hit1"] += first is not None and first < 1
        sums["hit5"] += first is not None and first < 5
        if any(g >= 2 for g in rel.values()):
            scores.strict += 1
            sums["hit1s"] += first_strict is not None and first_strict < 1
            sums["hit5s"] += first_strict is not None and first_strict < 5
        scores.n += 1
        rows.append((qid, found, relevant, first if first is not None else -1,
                     latencies[-1], text))


def report(scores, out):
    sums, n, strict, latencies, rows = (scores.sums, scores.n, scores.strict,
                                        scores.latencies, scores.rows)
    with open(os.path.join(out, "queries.tsv"), "w", encoding="utf-8") as f:
        f.write("query\tfound\trelevant\tfirst_rank\tms\ttext\n")
        for r in rows:
            f.write("%s\t%d\t%d\t%d\t%.2f\t%s\n" % r)
    print("queries\t%d" % n)
    print("recall@10\t%.3f" % (sums["recall"] / n))
    print("ndcg@10\t%.3f" % (sums["ndcg"] / n))
    print("mrr@10\t%.3f" % (sums["mrr"] / n))
    print("hit@1\t%.3f" % (sums["hit1"] / n))
    print("hit@5\t%.3f" % (sums["hit5"] / n))
    print("hit@1_grade2\t%.3f" % (sums["hit1s"] / strict))
    print("hit@5_grade2\t%.3f" % (sums["hit5s"] / strict))
    print("latency_p50_ms\t%.2f" % percentile(latencies, 50))
    print("latency_p99_ms\t%.2f" % percentile(latencies, 99))


def learn(folder, base, cookies, out, csrf, ids_file, folds, reset):
    import subprocess
    queries = json.load(open(os.path.join(folder, "dev_queries.json"), encoding="utf-8"))
    qrels = json.load(open(os.path.join(folder, "dev_qrels.json"), encoding="utf-8"))
    ids = {}
    with open(ids_file) as f:
        for line in f:
            number, faq_id = line.split()
            ids[int(number)] = int(faq_id)
    folds = int(folds)
    fold_of = {}
    for i, qid in enumerate(q for q in queries if qrels.get(q)):
        fold_of[qid] = i % folds
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Cookie": cookie_header(cookies)}
    post_headers = dict(headers)
    post_headers.update({"X-CSRF-Token": csrf, "Content-Type": "application/json"})
    scores = Scores()
    clicks = 0
    for fold in range(folds):
        subprocess.run(reset, shell=True, check=True)
        for qid, text in queries.items():
            if qid not in fold_of or fold_of[qid] == fold:
                continue
            for corpus_id, grade in qrels[qid].items():
                if grade < 1:
                    continue
                faq_id = ids[int(corpus_id) + 1]
                conn.request("POST", "%s/faqs/%d/clicks" % (url.path, faq_id),
                             body=json.dumps({"q": text}).encode(), headers=post_headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status >= 300:
                    sys.exit("click %s -> %d: HTTP %d %s" % (qid, faq_id, resp.status,
                                                             body[:200]))
                clicks += 1
        time.sleep(3)  # every copy reads new clicks once a second (NCC_FAQ_INDEX_CHECK_MS)
        search(conn, url, headers, queries, qrels, lambda q: fold_of.get(q) == fold, scores)
    subprocess.run(reset, shell=True, check=True)
    print("folds\t%d" % folds)
    print("clicks_per_fold\t%d" % (clicks // folds))
    report(scores, out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "csv":
        make_csv(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "run":
        run(*sys.argv[2:])
    elif len(sys.argv) == 10 and sys.argv[1] == "learn":
        learn(*sys.argv[2:])
    else:
        sys.exit(__doc__)
