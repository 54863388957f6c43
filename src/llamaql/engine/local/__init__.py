"""The local engine: llama.cpp in this process. The scheduler's step loop,
sequence placement, KV parking and files, prompt encoding and templates, the model
runtime. May import engine/ (what both engines share), ports and config.
"""
