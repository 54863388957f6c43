"""The inference engine: a queue-fed llama.cpp worker speaking the model's chat template.

`types` is the contract; `engine.LlamaEngine` implements it in process (llama.cpp is only
imported when it starts); `metadata.read_gguf_metadata` reads a model file's header.
"""
