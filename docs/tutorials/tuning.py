# %% [markdown]
# # Tuning
#
# `fusionrec.tune` searches a model's hyper-parameters with Optuna's TPE sampler (fixed seed) on the **validation**
# part only, prunes hopeless trials per epoch for the models that train in epochs, refits the best setting on the
# training part and tests it **once**. Each model declares its search space (`search_space()`); a config's `tune`
# table narrows or overrides it. The budget here is tiny so the page builds in seconds; `fusionrec tune CONFIG`
# does the same from the command line.

# %%
import tempfile

import matplotlib.pyplot as plt
import pandas as pd

from fusionrec import build_side_info, load_dataset, make_model, per_user_split, tune

ds = load_dataset("synthetic", n_users=300, n_items=200, seed=4)
split = per_user_split(ds, ratios=(0.8, 0.1, 0.1), seed=0)
side, _ = build_side_info(ds, cache=False)
print("EASE's declared search space:", make_model("EASE").search_space())

# %% [markdown]
# ## A config: what to tune, on what, by which metric
#
# The same keys as an experiment config file (JSON or TOML). The loaded dataset, split and content features are
# passed in as objects here, so they are not loaded or encoded again.

# %%
config = {
    "name": "tutorial-tuning",
    "k": [10, 20],
    "significance": False,
    "dataset": {"name": "synthetic", "params": {"n_users": 300, "n_items": 200, "seed": 4}},
    "split": {"strategy": "per_user", "params": {"ratios": [0.8, 0.1, 0.1], "seed": 0}},
    "models": [
        {"name": "MostPopular"},
        {"name": "EASE"},
        {"name": "ALS", "params": {"binarize": True, "seed": 0}},
    ],
    "tune": {
        "metric": "ndcg@20",
        "models": ["EASE", "ALS"],
        # narrower ranges than ALS's declared search space, inside its declared parameter constraints
        "space": {
            "ALS": {"n_factors": ["int", 8, 32, "log"], "reg": ["float", 0.1, 30.0, "log"], "epochs": ["int", 3, 10]}
        },
    },
}
out = tempfile.mkdtemp(prefix="fusionrec-tune-")
result = tune(config, n_trials=6, dataset=ds, split=split, side=side, out=out, seed=0)

# %%
rows = [
    {
        "model": m.label,
        "best valid " + result.metric: m.best_value,
        "complete": m.n_complete,
        "pruned": m.n_pruned,
        **{f"test {k}": v for k, v in m.test.items() if k in ("NDCG@10", "NDCG@20")},
        "best params": m.best_params,
    }
    for m in result.models
]
pd.DataFrame(rows)

# %% [markdown]
# ## The search, trial by trial
#
# Each point is one trial's validation score (pruned trials stopped early and have none).

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
for m in result.models:
    done = [t for t in m.trials if t["state"] == "COMPLETE"]
    ax.plot([t["number"] for t in done], [t["value"] for t in done], "o-", label=m.label)
ax.set_xlabel("trial")
ax.set_ylabel(f"valid {result.metric}")
ax.legend()
fig.tight_layout()
plt.show()
