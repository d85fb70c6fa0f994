# %% [markdown]
# # Cold start from content
#
# Items nobody has interacted with yet can only be ranked from what they are: their text, labels, image, sound.
# `cold_items_split` holds out whole items: the test items have no training interactions at all, and each model
# ranks only those cold items (`candidates=`). Collaborative models have nothing to go on there; content models do.

# %%
import matplotlib.pyplot as plt
import numpy as np

from fusionrec import build_side_info, cold_items_split, evaluate_ranking, load_dataset, make_model

ds = load_dataset("synthetic", n_users=300, n_items=200, seed=2)
split = cold_items_split(ds, test=0.2, valid=0.1, seed=0)
side, _ = build_side_info(ds, cache=False)
train_items = np.unique(split.train.matrix.indices)
cold = np.setdiff1d(np.unique(split.test.matrix.indices), train_items)
print(f"{len(cold)} cold test items, none of them in the training part")

# %% [markdown]
# ## Which models can rank a cold item?
#
# A model's declaration says whether it reads content (`fit_inputs` has `"side"`) and whether new items can be added
# from their content later (`can_add_items`).

# %%
names = ["Random", "MostPopular", "EASE", "ContentKNN", "ContentKRR", "HybridMF", "VBPR"]
params = {"HybridMF": {"n_factors": 16, "epochs": 10, "user_features": [], "seed": 0}, "VBPR": {"seed": 0}}
scores = {}
for name in names:
    model = make_model(name, **params.get(name, {}))
    decl = model.declaration()
    model.fit(split.train, **decl.fit_kwargs(side=side))
    res = evaluate_ranking(model, split.train, split.test, k=[10], candidates=cold, exclude=[split.valid])
    scores[name] = res.metrics["NDCG@10"]
    print(
        f"{name:>12}  content: {'side' in decl.fit_inputs!s:5}  add_items: {decl.can_add_items!s:5}  "
        f"NDCG@10 on cold items {scores[name]:.4f}"
    )

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
colors = ["#9e9e9e" if n in ("Random", "MostPopular", "EASE") else "#3f51b5" for n in names]
ax.bar(names, [scores[n] for n in names], color=colors)
ax.set_ylabel("NDCG@10, cold items only")
ax.set_title("Grey: behaviour only. Blue: reads content")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A brand-new item after training
#
# `SideInfo.encode_items` turns raw content into features with the encoders fitted on the catalogue; the model's
# `add_items` appends the item, which is then scored like any other.

# %%
model = make_model("ContentKNN").fit(split.train, side)
rows = side.encode_items({"title": ["Moonlit harbour"], "genres": [["drama"]], "text": ["a quiet drama by the sea"]})
new = model.add_items(rows)
print("new item index:", new)
items, item_scores = model.similar_items(new, k=5)
titles, _ = ds.item_modalities["title"].align(ds.item_ids)
print("closest catalogue items:", [str(titles[i]) for i in items[0]])
