# %% [markdown]
# # Multimodal quickstart
#
# From a behaviour log plus item content (text, labels, images, audio, numbers) to evaluated recommendations, on the
# built-in synthetic dataset (small here, so the page builds in seconds). The same job at full size is
# `fusionrec quickstart` on the command line.
#
# Everything used below is importable from `fusionrec` itself.

# %%
import matplotlib.pyplot as plt

import fusionrec
from fusionrec import build_side_info, evaluate_ranking, load_dataset, make_model, per_user_split

ds = load_dataset("synthetic", n_users=300, n_items=200, seed=0)
print(f"fusionrec {fusionrec.__version__}")
print(ds.summary())

# %% [markdown]
# ## Split and encode the content
#
# `per_user_split` keeps 80% of each user's interactions for training, 10% for validation and 10% for the test.
# `build_side_info` encodes every item (and user) modality with a cheap, deterministic default encoder (TF-IDF for
# text, multi-hot for labels, colour/texture statistics for images, spectral statistics for audio, scaling for
# numbers) and returns the dense features with the fitted encoders.

# %%
split = per_user_split(ds, ratios=(0.8, 0.1, 0.1), seed=0)
side, report = build_side_info(ds, cache=False)
for name, features in side.item_features.items():
    print(f"{name:>12}: {features.shape[1]:4d} dims")

# %% [markdown]
# ## Fit collaborative and multimodal models
#
# Each model declares what its `fit` takes besides the interactions (`declaration().fit_inputs`): the content
# models take `side`, the collaborative ones do not. `fit_kwargs` keeps only what a model reads.

# %%
models = {
    "MostPopular": make_model("MostPopular"),
    "EASE": make_model("EASE", reg=200.0),
    "ALS": make_model("ALS", n_factors=16, epochs=15, reg=10.0, binarize=True, seed=0),
    "ContentKNN": make_model("ContentKNN", weighting="none"),
    "CEASE": make_model("CEASE", reg=200.0, side_weight=5.0),
    "HybridMF": make_model("HybridMF", n_factors=16, epochs=10, user_features=[], seed=0),
}
results = {}
for name, model in models.items():
    decl = model.declaration()
    model.fit(split.train, **decl.fit_kwargs(side=side))
    res = evaluate_ranking(model, split.train, split.test, k=[10, 20], exclude=[split.valid])
    results[name] = res.metrics
    print(f"{name:>12}  reads {sorted(decl.fit_inputs) or ['interactions only']}  NDCG@10 {res.metrics['NDCG@10']:.4f}")

# %% [markdown]
# ## Compare
#
# Training (and validation) items are masked; every test interaction is relevant; all items are ranked.

# %%
names = list(results)
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh(names, [results[n]["NDCG@10"] for n in names], color="#3f51b5")
ax.set_xlabel("NDCG@10 on the test part")
ax.invert_yaxis()
ax.set_title("Synthetic catalogue, 300 users x 200 items")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Recommend by raw id
#
# Models work on contiguous indices inside; the `*_ids` methods take and return the raw ids of the data.

# %%
best = models[max(results, key=lambda n: results[n]["NDCG@10"])]
items, scores = best.recommend_ids([ds.user_ids.ids[0]], k=5)
titles, _ = ds.item_modalities["title"].align(ds.item_ids)
index = {item: i for i, item in enumerate(ds.item_ids.ids)}
for item, score in zip(items[0], scores[0], strict=True):
    print(f"{item:>6}  {score:6.3f}  {titles[index[item]]}")
