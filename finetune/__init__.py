"""LoRA fine-tuning of the chat model on the domain, served by vLLM."""
