"""docqa, the application: the composition root (``services``), the `docqa` command line (``cli``), the HTTP
API and widget (``api``) and the vLLM supervisor (``model_server``), built on the library (``rag``) and the
features (``ingest``, ``finetune``). The Streamlit UI (``ui/``) sits on top and uses ``services``."""
