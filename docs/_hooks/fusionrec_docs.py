"""MkDocs hook: the reference pages generated from the code, so they cannot drift from it.

- ``models/index.md`` and ``models/<Name>.md``: one page per registered model, from the registry
  (:data:`fusionrec.models.registry.MODELS`), each class's declaration (``cls.declaration()``), its parameters
  (``param_names`` / ``param_defaults`` / ``param_constraints``), tuning ranges (``search_space``) and docstring;
  the nav's "Models" section gets one entry per family.
- ``reference/api.md``: the public API (``fusionrec.__all__``, grouped by the module that exports each name), rendered
  by mkdocstrings from the docstrings.
- ``reference/cli.md``: every ``fusionrec`` command and option, walked from the Typer app's click tree.
- ``changelog.md``: ``CHANGELOG.md``.
- ``<!-- results: HEADING -->`` in a page is replaced by that section's command line and first table from
  ``benchmarks/RESULTS.md`` (the measured tables are quoted, never copied); an unknown heading fails the build.

A registered model without an entry in :data:`PAPERS` fails the build: a new model states the paper it follows.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.fusionrec")
ROOT = Path(__file__).resolve().parents[2]

#: the paper (or reference implementation) each registered model follows; "" for non-personalised baselines and
#: fusionrec's own score-level combinations
PAPERS: dict[str, str] = {
    "MostPopular": "",
    "Random": "",
    "BiasBaseline": "Koren, *Factor in the neighbors: scalable and accurate collaborative filtering*, TKDD 2010 "
    "(the baseline predictor).",
    "UserKNN": "Herlocker, Konstan, Borchers & Riedl, *An algorithmic framework for performing collaborative "
    "filtering*, SIGIR 1999.",
    "ItemKNN": "Sarwar, Karypis, Konstan & Riedl, *Item-based collaborative filtering recommendation algorithms*, "
    "WWW 2001.",
    "KNNBaseline": "Koren, *Factor in the neighbors: scalable and accurate collaborative filtering*, TKDD 2010.",
    "SVD": "Koren, Bell & Volinsky, *Matrix factorization techniques for recommender systems*, IEEE Computer 2009.",
    "SVDpp": "Koren, *Factorization meets the neighborhood*, KDD 2008.",
    "TimeSVDpp": "Koren, *Collaborative filtering with temporal dynamics*, KDD 2009.",
    "NMF": "Luo, Xia, Zhu, Zhu & Shang, *An efficient non-negative matrix-factorization-based approach to "
    "collaborative filtering for recommender systems*, IEEE TII 2014.",
    "PMF": "Salakhutdinov & Mnih, *Probabilistic matrix factorization*, NIPS 2008.",
    "BayesianFM": "Rendle, *Factorization machines with libFM*, ACM TIST 2012 (MCMC inference).",
    "ALS": "Hu, Koren & Volinsky, *Collaborative filtering for implicit feedback datasets*, ICDM 2008.",
    "BPR": "Rendle, Freudenthaler, Gantner & Schmidt-Thieme, *BPR: Bayesian personalized ranking from implicit "
    "feedback*, UAI 2009.",
    "EASE": "Steck, *Embarrassingly shallow autoencoders for sparse data*, WWW 2019; its ``dropout`` penalty: Steck, "
    "*Autoencoders that don't overfit towards the identity* (EDLAE), NeurIPS 2020.",
    "CEASE": "Jeunen, Van Balen & Goethals, *Closed-form models for collaborative filtering with side-information*, "
    "RecSys 2020.",
    "ActivityCEASE": "Jeunen, Van Balen & Goethals, RecSys 2020 (CEASE), with a user-degree-weighted Gram (fusionrec).",
    "ContentKNN": "Lops, de Gemmis & Semeraro, *Content-based recommender systems: state of the art and trends*, "
    "Recommender Systems Handbook 2011.",
    "HybridMF": "Kula, *Metadata embeddings for user and item cold-start recommendations* (LightFM), CBRecSys 2015.",
    "VBPR": "He & McAuley, *VBPR: visual Bayesian personalized ranking from implicit feedback*, AAAI 2016.",
    "ContentKRR": "Kernel ridge regression from content to EASE-smoothed histories (fusionrec; EASE: Steck 2019).",
    "DeepFusion": "Per-modality towers and early / late / attention fusion as surveyed in Baltrušaitis, Ahuja & "
    "Morency, *Multimodal machine learning: a survey and taxonomy*, TPAMI 2019.",
    "FineTunedTwoTower": "Two-tower retrieval with a sampled softmax as in Yi et al., *Sampling-bias-corrected neural modeling for large corpus item recommendations*, RecSys 2019, with pretrained encoders fine-tuned in the loop as in Yuan et al., *Where to go next for recommender systems? ID- vs. modality-based recommender models revisited*, SIGIR 2023; LoRA adapters of Hu et al., ICLR 2022.",
    "GraphFusion": "He et al., *LightGCN*, SIGIR 2020, with modality item graphs as in Zhang et al., *Mining latent "
    "structures for multimedia recommendation* (LATTICE), MM 2021.",
    "GraphEASE": "Steck, EASE, WWW 2019, with the frozen modality kNN item graph of Zhou & Shen, *A tale of two "
    "graphs: freezing and denoising graph structures for multimodal recommendation* (FREEDOM), MM 2023, and "
    "EDLAE's dropout penalty (Steck, NeurIPS 2020).",
    "LightGCN": "He, Deng, Wang, Li, Zhang & Wang, *LightGCN: simplifying and powering graph convolution network for "
    "recommendation*, SIGIR 2020.",
    "SASRec": "Kang & McAuley, *Self-attentive sequential recommendation*, ICDM 2018.",
    "BERT4Rec": "Sun, Liu, Wu, Pei, Lin, Ou & Jiang, *BERT4Rec: sequential recommendation with bidirectional encoder "
    "representations from transformer*, CIKM 2019.",
    "GRU4Rec": "Hidasi, Karatzoglou, Baltrunas & Tikk, *Session-based recommendations with recurrent neural "
    "networks*, ICLR 2016.",
    "CNNLSTM": "A CNN image tower concatenated with an LSTM over the sequence (fusionrec).",
    "SocialMF": "Jamali & Ester, *A matrix factorization technique with trust propagation for recommendation in "
    "social networks*, RecSys 2010.",
    "SoRec": "Ma, Yang, Lyu & King, *SoRec: social recommendation using probabilistic matrix factorization*, "
    "CIKM 2008.",
    "TrustSVD": "Guo, Zhang & Yorke-Smith, *TrustSVD: collaborative filtering with both the explicit and implicit "
    "influence of user trust and of item ratings*, AAAI 2015.",
    "SocialBPR": "Jamali & Ester, RecSys 2010 (the trust regulariser) on Rendle et al.'s BPR loss, UAI 2009.",
    "SocialLightGCN": "Wu et al., *A neural influence diffusion model for social recommendation* (DiffNet), "
    "SIGIR 2019, with LightGCN's propagation.",
    "WeightedBlend": "",
    "Stacking": "",
    "ReciprocalRankFusion": "Cormack, Clarke & Büttcher, *Reciprocal rank fusion outperforms Condorcet and "
    "individual rank learning methods*, SIGIR 2009.",
    "Switching": "Burke, *Hybrid recommender systems: survey and experiments*, UMUAI 2002.",
    "DPMF": "Abadi et al., *Deep learning with differential privacy* (DP-SGD), CCS 2016, on a BPR loss.",
    "FedMF": "McMahan et al., *Communication-efficient learning of deep networks from decentralized data* "
    "(FedAvg), AISTATS 2017, on a BPR loss.",
}

FIT_INPUT_WORDS = {
    "side": "content and side information (`SideInfo`: item/user features, social links)",
    "valid": "validation interactions (early stopping or blending)",
    "timestamps": "timestamps on the training interactions",
    "texts": "raw item texts",
    "images": "raw item images (file paths or arrays)",
}
HOOK_WORDS = {
    "item_contributions": "cites the user's history items whose contributions sum to the score",
    "score_parts": "splits the score into collaborative and per-modality content parts",
}
FAMILY_ORDER = [
    "baseline",
    "neighbourhood",
    "matrix factorisation",
    "linear autoencoder",
    "content-based",
    "multimodal fusion",
    "sequential",
    "social",
    "ensemble",
    "private (differential privacy)",
    "federated",
    "other",
]


# ---------------------------------------------------------------------------------------------------------- models
def _models() -> list[dict[str, Any]]:
    from fusionrec.cli.models import describe_model
    from fusionrec.models.registry import MODELS, available_models, get_model_class

    out = []
    for name in available_models():
        cls = get_model_class(name)
        info = describe_model(name)
        if name not in PAPERS:
            raise PluginError(f"docs: model {name!r} has no entry in PAPERS (docs/_hooks/fusionrec_docs.py)")
        out.append({"name": name, "cls": cls, "info": info, "path": MODELS[name].replace(":", ".")})
    return out


def _families(models: list[dict[str, Any]]) -> dict[str, list[str]]:
    fam: dict[str, list[str]] = defaultdict(list)
    for m in models:
        fam[m["info"].family].append(m["name"])
    return {f: fam[f] for f in sorted(fam, key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else 99, f))}


def _cell(text: str) -> str:
    """``text`` safe in a markdown table cell: one line, no column bar."""
    return text.replace("|", "\\|").replace("\n", " ")


def _plain(text: str) -> str:
    """Help text safe as markdown: brackets escaped (``[, rating]`` is not a reference link)."""
    return text.replace("[", "\\[").replace("]", "\\]")


def _indexing(ix: Any) -> str:
    where = {(True, False): "rows", (False, True): "columns", (True, True): "rows and columns"}[(ix.rows, ix.columns)]
    return where + (f", forgotten entries set to {ix.fill:g}" if ix.fill else "")


def model_page(m: dict[str, Any]) -> str:
    name, cls, info = m["name"], m["cls"], m["info"]
    decl = cls.declaration()
    reads = ["training interactions (`Interactions`, CSR users x items)"]
    reads += [FIT_INPUT_WORDS[k] for k in sorted(decl.fit_inputs)]
    if decl.modality_param:
        reads.append(f"the item modalities named by its `{decl.modality_param}` parameter")
    if decl.uses_friends:
        reads.append("a new user's friends (social links) when folding them in")
    cold = []
    if decl.can_fold_in:
        cold.append(
            "new users from a history: `fold_in_user`"
            + (" and `fold_in_users` (many at once)" if decl.can_batch_fold_in else "")
        )
    if decl.can_add_items:
        cold.append("new items from their content: `add_items`")
    if decl.has_factors:
        cold.append("new items from vectors: `add_item_vectors` (a factor model: `factors()`)")
    lines = [
        f"# {name}",
        "",
        f"**Family:** {info.family} &nbsp; **Predicts ratings:** {'yes' if info.predicts_ratings else 'no'} "
        f"&nbsp; **Uses content:** {'yes' if info.uses_content else 'no'} &nbsp; **Class:** `{m['path']}`",
        "",
        info.summary,
        "",
        "```python",
        "from fusionrec import make_model",
        f'model = make_model("{name}")  # keyword parameters below; model.fit(train, ...)',
        "```",
        "",
        "## What it reads",
        "",
        *[f"- {r}" for r in reads],
        "",
        "## Cold start",
        "",
        *([f"- {c}" for c in cold] or ["No cold-start protocol: new users and items need a refit."]),
        "",
        "## Parameters",
        "",
        "| parameter | default | allowed values |",
        "|---|---|---|",
        *[f"| `{p}` | `{_cell(d)}` | {_cell(a)} |" for p, d, a in info.params],
        "",
    ]
    if not info.params:
        lines[-4:-1] = ["This model takes no parameters."]
    space = cls.search_space()
    if space:
        lines += ["## Tuning ranges", "", "What `fusionrec tune` searches unless a config overrides it:", ""]
        lines += ["| parameter | range |", "|---|---|"]
        lines += [f"| `{p}` | `{_cell(repr(v))}` |" for p, v in space.items()]
        lines.append("")
    hooks = sorted(decl.explanation_hooks)
    lines += ["## Explanations", ""]
    lines += [f"- `{h}`: {HOOK_WORDS[h]}" for h in hooks] or [
        "No model-specific hook: `fusionrec.explain` cites history items by co-occurrence or item vectors."
    ]
    lines.append("")
    state = [(k, "user", v) for k, v in decl.user_state.items()] + [(k, "item", v) for k, v in decl.item_state.items()]
    if state:
        lines += [
            "## Declared state",
            "",
            "The learned arrays indexed by users or items (what `forget_user` blanks, and the contract suite checks):",
            "",
            "| array | indexed by | along |",
            "|---|---|---|",
            *[f"| `{k}` | {who} | {_indexing(ix)} |" for k, who, ix in state],
            "",
        ]
    if decl.member_state:
        lines += [f"Member models are held in `{decl.member_state}` (forgetting reaches them).", ""]
    lines += ["## Paper", "", PAPERS[name] or "None: a non-personalised baseline or a fusionrec combination.", ""]
    lines += [
        "## Docstring",
        "",
        f"::: {m['path']}",
        "    options:",
        "      show_root_heading: false",
        "      show_root_toc_entry: false",
        "      members: false",
        "",
    ]
    return "\n".join(lines)


def models_index(models: list[dict[str, Any]]) -> str:
    lines = [
        "# Models",
        "",
        "Every registered model, generated from the registry and each class's declaration. `make_model(NAME, ...)` "
        "builds one; `fusionrec models info NAME` prints the same parameters. The [user guide](../guide/models.md) "
        "says when to use which.",
        "",
    ]
    for family, names in _families(models).items():
        lines += [f"## {family[0].upper() + family[1:]}", ""]
        lines += ["| model | summary | content | ratings | cold start |", "|---|---|---|---|---|"]
        for m in models:
            if m["name"] in names:
                i = m["info"]
                lines.append(
                    f"| [{i.name}]({i.name}.md) | {_cell(i.summary)} | {'yes' if i.uses_content else 'no'} | "
                    f"{'yes' if i.predicts_ratings else 'no'} | {i.cold_start} |"
                )
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------- API
def _export_groups() -> list[tuple[str, list[str]]]:
    """``fusionrec._EXPORTS`` in source order, grouped under its comment lines (``# loading: ...``)."""
    import fusionrec

    src = inspect.getsource(fusionrec)
    body = src[src.index("_EXPORTS: dict[str, str] = {") :]
    body = body[: body.index("\n}\n")]
    groups: list[tuple[str, list[str]]] = []
    for line in body.splitlines()[1:]:
        line = line.strip()
        if line.startswith("#"):
            groups.append((line.lstrip("# ").strip(), []))
        elif m := re.match(r'"(\w+)":', line):
            if not groups:
                groups.append(("other", []))
            groups[-1][1].append(m.group(1))
    listed = {n for _, names in groups for n in names}
    if listed != set(fusionrec._EXPORTS):
        raise PluginError(
            f"docs: could not read fusionrec._EXPORTS' groups: {sorted(set(fusionrec._EXPORTS) ^ listed)}"
        )
    return groups


def _defined_at(name: str) -> str:
    """The dotted path where ``fusionrec.<name>`` is defined (the lazy exports re-export from private modules)."""
    import importlib

    import fusionrec

    module = importlib.import_module(fusionrec._EXPORTS[name])
    obj = getattr(module, name)
    if inspect.ismodule(obj):  # a callable module (fusionrec.explain): document the function of the same name
        obj = getattr(obj, name)
    return f"{obj.__module__}.{obj.__qualname__}"


def api_page() -> str:
    import fusionrec

    lines = [
        "# Python API",
        "",
        "Everything below is importable from `fusionrec` (`from fusionrec import make_model`): the list is "
        "`fusionrec.__all__`, one obvious way per job, grouped as in `fusionrec/__init__.py`. The subpackages hold "
        "the rest (every encoder, model class, metric and Ray stage).",
        "",
        f"`fusionrec.__version__` is `{fusionrec.__version__}`.",
        "",
    ]
    for title, names in _export_groups():
        lines += [f"## {title[0].upper() + title[1:]}", ""]
        for name in names:
            lines += [
                f"### `{name}`",
                "",
                f"::: {_defined_at(name)}",
                "    options:",
                "      show_root_heading: false",
                "      show_root_toc_entry: false",
                "",
            ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------- CLI
def _cli_command(cmd: Any, path: list[str], level: int) -> list[str]:
    """One command's section (help, usage, arguments and options) and its subcommands'. Typer ships its own copy of
    click, so commands are read by their interface (``params``, ``list_commands``), not by click's classes."""
    title = " ".join(path)
    ctx = cmd.context_class(cmd, info_name=path[-1])
    lines = [f"{'#' * min(level, 6)} `{title}`", ""]
    doc = inspect.cleandoc(cmd.help or "")
    if doc:
        lines += [_plain(doc), ""]
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    lines += ["```text", f"{title} {usage}".rstrip(), "```", ""]
    rows = []
    for p in cmd.params:  # what `--help` shows: the name with its type, the help with its default
        if p.param_type_name == "option" and p.hidden:
            continue
        record = p.get_help_record(ctx)
        if record is None:
            continue
        what = "argument" if p.param_type_name == "argument" else "option"
        rows.append((f"`{record[0]}`", what, record[1]))
    if rows:
        lines += ["| name | kind | help |", "|---|---|---|"]
        lines += [f"| {_cell(a)} | {b} | {_plain(_cell(c))} |" for a, b, c in rows]
        lines.append("")
    if hasattr(cmd, "list_commands"):  # a group
        for sub in cmd.list_commands(ctx):
            lines += _cli_command(cmd.get_command(ctx, sub), [*path, sub], level + 1)
    return lines


def cli_page() -> str:
    import typer

    from fusionrec.cli.main import app

    root = typer.main.get_command(app)
    lines = [
        "# Command line",
        "",
        "Generated from the `fusionrec` command itself (every command and option). `fusionrec COMMAND --help` "
        "prints the same; `python -m fusionrec` is the same program. Errors are one `error:` line that says what "
        "to do (`FUSIONREC_DEBUG=1` shows the traceback).",
        "",
    ]
    return "\n".join(lines + _cli_command(root, ["fusionrec"], 2))


# --------------------------------------------------------------------------------------------------------- results
_RESULTS_MARK = re.compile(r"<!--\s*results:\s*(.+?)\s*-->")


def _results_section(heading: str) -> str:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    for sec in sections[1:]:
        title, _, body = sec.partition("\n")
        if title.strip() != heading:
            continue
        blocks = [b for b in re.split(r"\n\s*\n", body.strip()) if not b.lstrip().startswith("<!--")]
        command = next((b for b in blocks if b.startswith("`")), "")
        table = next((b for b in blocks if b.lstrip().startswith("|")), "")
        if not table:
            raise PluginError(f"docs: RESULTS.md section {heading!r} has no table")
        # links inside RESULTS.md are relative to benchmarks/: show them as paths
        command = re.sub(r"\[([^\]]+)\]\((?!https?:)([^)]+)\)", r"\1 (`benchmarks/\2`)", command)
        return "\n\n".join(
            [f'!!! note "Measured: {heading}"', *(f"    {ln}" for ln in command.splitlines()), "", table, ""]
        ).replace("\n\n\n", "\n\n")
    raise PluginError(f"docs: no section '## {heading}' in benchmarks/RESULTS.md")


# ------------------------------------------------------------------------------------------------------- endpoints
def endpoints_table() -> str:
    """Every operation of the HTTP API, read from the OpenAPI schema of an app built over a tiny bundle."""
    import tempfile

    import pandas as pd

    from fusionrec import create_app, make_model, save_bundle
    from fusionrec.data import Interactions
    from fusionrec.serving import ServingSettings

    train = Interactions.from_frame(pd.DataFrame({"user": ["a", "a", "b", "c"], "item": ["x", "y", "x", "z"]}))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(Path(tmp) / "b", make_model("MostPopular").fit(train), train)
        schema = create_app(ServingSettings(bundle_path=bundle, api_key="k")).openapi()
    rows = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            text = (op.get("description") or op.get("summary") or "").strip().split("\n\n")[0]
            rows.append(f"| `{method.upper()}` | `{path}` | {_cell(text)} |")
    if not rows:
        raise PluginError("docs: the app's OpenAPI schema lists no operation")
    return "\n".join(["| method | path | what it does |", "|---|---|---|", *rows, ""])


# ----------------------------------------------------------------------------------------------------------- hooks
_STATE: dict[str, Any] = {}


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    models = _models()
    _STATE["models"] = models
    families = _families(models)
    for entry in config.nav or []:
        if isinstance(entry, dict) and "Models" in entry:
            section = entry["Models"]
            section[:] = [s for s in section if not (isinstance(s, dict) and s.get("_generated"))]
            section.append({"Overview": "models/index.md"})
            for family, names in families.items():
                section.append({family[0].upper() + family[1:]: [{n: f"models/{n}.md"} for n in names]})
            break
    else:
        raise PluginError("docs: mkdocs.yml nav has no 'Models' section for the generated model pages")
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    models = _STATE["models"]
    pages = {"models/index.md": models_index(models), "reference/api.md": api_page(), "reference/cli.md": cli_page()}
    pages.update({f"models/{m['name']}.md": model_page(m) for m in models})
    pages["changelog.md"] = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: MkDocsConfig, files: Files) -> str:
    if "<!-- endpoints -->" in markdown:
        markdown = markdown.replace("<!-- endpoints -->", endpoints_table())
    return _RESULTS_MARK.sub(lambda m: _results_section(m.group(1)), markdown)
