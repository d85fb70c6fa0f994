# %% [markdown]
# # Your own CSV files to a served model
#
# Bring a behaviour log (`user,item[,rating][,timestamp]`) and an item table; every other item column becomes
# content. Here the built-in synthetic catalogue is written as such files first, so the page runs as written.
# On the command line the same steps are:
#
# ```bash
# fusionrec datasets export demo-shop --users 200 --items 120
# fusionrec train --interactions demo-shop/interactions.csv --items demo-shop/items.csv \
#     --model HybridMF -p n_factors=16 --out bundles/shop
# fusionrec serve bundles/shop --port 8000 --api-key secret --content-root demo-shop
# ```
#
# Below, the Python API does each step and FastAPI's `TestClient` talks to the app in-process instead of a live
# server.

# %%
import tempfile
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from fusionrec import build_side_info, create_app, from_files, load_dataset, make_model, save_bundle
from fusionrec.data.datasets.synthetic import write_files  # what `fusionrec datasets export` calls
from fusionrec.serving import ServingSettings, item_meta_from_dataset

work = Path(tempfile.mkdtemp(prefix="fusionrec-tutorial-"))
paths = write_files(load_dataset("synthetic", n_users=200, n_items=120, seed=1), work / "demo-shop")
pd.read_csv(paths["items"]).head(3)

# %% [markdown]
# ## Read the files
#
# `from_files` detects the column roles (user, item, rating, timestamp) and turns each item column into a modality:
# text, image paths (relative to the table), categorical labels (`a|b` for several) or numbers. What it decided,
# and every column it ignored with the reason, is in `dataset.meta["ingest"]`.

# %%
ds = from_files(paths["interactions"], items=paths["items"])
print(ds)
for name, modality in ds.item_modalities.items():
    print(f"{name:>12}: {modality.kind}")

# %% [markdown]
# ## Encode, fit, bundle
#
# A bundle holds the model, the raw id maps, display metadata, the content features *and the fitted encoders*
# (JSON and arrays, no pickle), so the server can encode a posted item's raw content.

# %%
side, report = build_side_info(ds, cache=False)
model = make_model("HybridMF", n_factors=16, epochs=10, user_features=[], seed=0).fit(ds.interactions, side)
bundle = save_bundle(work / "bundles" / "shop", model, ds.interactions, item_meta_from_dataset(ds), side=side)
sorted(p.name for p in bundle.iterdir())

# %% [markdown]
# ## Serve
#
# `create_app` builds the FastAPI app from frozen settings. With an API key, writes and every read that reveals a
# user need the `X-API-Key` header.

# %%
settings = ServingSettings(bundle_path=bundle, api_key="secret", content_root=work / "demo-shop")
client = TestClient(create_app(settings))
key = {"X-API-Key": "secret"}
user = str(ds.user_ids.ids[0])
print(client.get("/health").json())
top = client.get("/recommend", params={"user": user, "k": 5}, headers=key).json()
pd.DataFrame(top["items"])

# %% [markdown]
# ## A new item, known only by its content
#
# The posted content is encoded with the bundle's fitted encoders and the model's own `add_items` places it;
# it is recommendable at once.

# %%
new_item = {
    "item": "i900",
    "title": "Moonlit harbour",
    "content": {"title": "Moonlit harbour", "genres": ["drama"], "description": "a quiet drama by the sea"},
}
print(client.post("/items", json=new_item, headers=key).status_code)
similar = client.get("/similar/i900", params={"k": 5}).json()
pd.DataFrame(similar["items"])

# %% [markdown]
# ## Events, explanations, forgetting
#
# Events are committed to the event store (SQLite beside the bundle by default) before the answer; a new user is
# folded in from their events without a refit. `DELETE /users/{user}` forgets a user: events, profile, model row.

# %%
events = [{"user": "newcomer", "item": str(i)} for i in ds.item_ids.ids[:3]]
print(client.post("/events", json={"events": events}, headers=key).status_code)
fresh = client.get("/recommend", params={"user": "newcomer", "k": 3}, headers=key).json()
print([row["item"] for row in fresh["items"]])
why = client.get("/explain", params={"user": user, "item": top["items"][0]["item"]}, headers=key).json()
print(why["sentence"])
print(client.delete("/users/newcomer", headers=key).status_code)
