"""AUC of a suggested definition on generated leads, beside what else could rank them.

    .venv/bin/python bench/suggest.py [--sizes 1000,3000,10000,30000] [--seed 1]

No database: the leads come from scoring.synthetic, whose outcomes are drawn from a known
logistic model. For each size, on the same stratified seeded 70/30 split that
scoring.learn uses, it prints the held-out AUC of

- suggestion: the rules scoring.learn writes (pooled values, bins, whole points, clamped 0-100),
  scored by the scoring engine itself;
- unconstrained LR: a logistic regression on the same fields with every value one-hot (no
  pooling), numbers as log1p and raw, standardised, no rounding: the model behind rules, freed;
- true model: the generator's own log-odds, the ceiling for any scorer on these leads.

Also the suggestion's MQL rate and won share at its proposed threshold, and the fit time.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from scoring import learn
from scoring.synthetic import generate

CATEGORICAL = ("source", "country", "industry", "job_title", "origin", "city", "last_activity")
NUMERIC = ("employees", "visits", "minutes_on_site", "pages_per_visit")


def _value(facts: dict, name: str):
    return facts.get(name, facts["attributes"].get(name))


def unconstrained_auc(leads, train, test) -> float:
    cats = [[str(_value(lead.facts, n) or "") for n in CATEGORICAL] for lead in leads]
    nums = []
    for lead in leads:
        row = []
        for name in NUMERIC:
            x = float(_value(lead.facts, name) or 0)
            row += [x, math.log1p(x)]
        nums.append(row)
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit([cats[i] for i in train])
    scaler = StandardScaler().fit([nums[i] for i in train])

    def matrix(idx):
        return np.hstack([encoder.transform([cats[i] for i in idx]), scaler.transform([nums[i] for i in idx])])

    y = np.array([lead.won for lead in leads])
    model = LogisticRegression(C=1.0, max_iter=3000).fit(matrix(train), y[train])
    return float(roc_auc_score(y[test], model.decision_function(matrix(test))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,3000,10000,30000")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    header = (
        f"{'leads':>7} {'won':>6} {'rules':>5} {'suggestion':>10} {'uncon. LR':>9} {'true':>6} "
        f"{'MQL rate':>8} {'won share':>9} {'fit s':>6}"
    )
    print(header)
    print("-" * len(header))
    for size in (int(s) for s in args.sizes.split(",")):
        leads = generate(size, seed=args.seed)
        y = np.array([int(lead.won) for lead in leads])
        train, test = train_test_split(
            np.arange(size), test_size=learn.HELD_OUT_SHARE, stratify=y, random_state=learn.SEED
        )
        started = time.perf_counter()
        suggestion = learn.learn([lead.facts for lead in leads], [lead.won for lead in leads])
        elapsed = time.perf_counter() - started
        figures = suggestion.validation["suggestion"]
        true_auc = roc_auc_score(y[test], [leads[i].true_logit for i in test])
        print(
            f"{size:>7} {int(y.sum()):>6} {len(suggestion.fit_rules):>5} {figures['auc']:>10.3f} "
            f"{unconstrained_auc(leads, train, test):>9.3f} {true_auc:>6.3f} {figures['mql_rate']:>8.1%} "
            f"{figures['won_share']:>9.1%} {elapsed:>6.1f}"
        )


if __name__ == "__main__":
    main()
