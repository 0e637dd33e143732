"""docqa's library: settings, types, the index store, retrieval, prompting, the generator protocol, the
answer pipeline, evidence, verification, answerability and evaluation. It imports none of the packages
built on it (ingest, finetune, docqa, ui); they hand it what it needs."""

__version__ = "0.1.0"
