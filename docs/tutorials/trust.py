# %% [markdown]
# # Explanations and fair re-ranking
#
# Two questions a recommender must answer besides "what next": *why this item?* and *is the list fair to the
# catalogue and to the user's tastes?* `fusionrec.explain` answers the first for every model; the re-rankers of
# `fusionrec.rerank` reshape any model's top-N for the second, and `evaluate_ranking` measures both sides.

# %%
import matplotlib.pyplot as plt
import numpy as np

from fusionrec import (
    Calibrated,
    ExposureCap,
    build_side_info,
    evaluate_ranking,
    explain,
    load_dataset,
    make_model,
    per_user_split,
)
from fusionrec.rerank import groups_from_labels

ds = load_dataset("synthetic", n_users=300, n_items=200, seed=3)
split = per_user_split(ds, ratios=(0.8, 0.1, 0.1), seed=0)
side, _ = build_side_info(ds, cache=False)
model = make_model("CEASE", reg=200.0, side_weight=5.0).fit(split.train, side)
titles, _ = ds.item_modalities["title"].align(ds.item_ids)

# %% [markdown]
# ## Why this item?
#
# An explanation cites the user's history items that drive the score, the content they share with the
# recommended item, and for fusion models each modality's share of the score (the parts sum to the score).
# It never shows raw factor numbers.

# %%
user = 0
items, _ = model.recommend(user, k=1, seen=split.train.matrix)
ex = explain(model, user, int(items[0][0]), side=side, train=split.train, titles=list(titles))
print(ex.sentence)
for cited in ex.because:  # the history items cited, with the strength of each link
    print(f"  {cited.name:<24} weight {cited.weight:.3f}")

# %% [markdown]
# ## Calibration: lists that match the user's genre mix
#
# `Calibrated` trades relevance against the KL divergence between the genre mix of the user's history and of the
# list (Steck, RecSys 2018); `lam` sets the trade-off. Each point below is one full evaluation.

# %%
labels, _ = ds.item_modalities["genres"].align(ds.item_ids)
genres, genre_names = groups_from_labels(list(labels))
print(f"{genres.shape[1]} genres: {genre_names}")
curve = []
for lam in [0.0, 0.2, 0.4, 0.6, 0.8]:
    rr = Calibrated(genres, split.train, lam=lam)
    res = evaluate_ranking(model, split.train, split.test, k=10, rerank=rr, item_groups=genres, exclude=[split.valid])
    curve.append((lam, res.metrics["NDCG@10"], res.metrics["CalibrationKL@10"]))
    print(f"lam {lam:.1f}: NDCG@10 {curve[-1][1]:.4f}  CalibrationKL@10 {curve[-1][2]:.4f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot([c[2] for c in curve], [c[1] for c in curve], "o-", color="#3f51b5")
for lam, ndcg, kl in curve:
    ax.annotate(f"lam {lam:.1f}", (kl, ndcg), textcoords="offset points", xytext=(4, 4), fontsize=8)
ax.set_xlabel("CalibrationKL@10 (lower: closer to the user's genre mix)")
ax.set_ylabel("NDCG@10")
ax.set_title("Accuracy against calibration (CEASE)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Exposure: a cap on the popular head
#
# Group each item as short head (the most popular fifth of the catalogue, group 1) or long tail (group 0), then
# allow the head at most 10% of each list: `max_share={1: 0.1}` caps only group 1.
# (`PopularShare@10` counts the slots given to the items that hold the top 20% of training interactions.)

# %%
popularity = np.asarray(split.train.matrix.getnnz(axis=0)).ravel()
head = (popularity >= np.quantile(popularity, 0.8)).astype(np.int64)  # 1: short head, 0: long tail
for name, rr in [("no re-ranking", None), ("cap the head at 10%", ExposureCap(head, max_share={1: 0.1}))]:
    res = evaluate_ranking(model, split.train, split.test, k=10, rerank=rr, item_groups=head, exclude=[split.valid])
    print(f"{name:>20}: NDCG@10 {res.metrics['NDCG@10']:.4f}  PopularShare@10 {res.metrics['PopularShare@10']:.3f}")
