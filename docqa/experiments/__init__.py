"""Recorded runs that compose the whole application (ingest, dataset, training, a private model server):
the shipped adapter's recipe (``grounded``) and the SQuAD fine-tuning experiment (``finetune_squad``)."""
