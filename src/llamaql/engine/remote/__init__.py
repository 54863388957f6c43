"""The remote engine: the Engine protocol over an OpenAI-compatible server.

`engine.RemoteEngine` streams replies from `/v1/chat/completions` (llama.cpp's
llama-server, vLLM, llama-cpp-python's server, Ollama); `server` finds out what the
server is and how it counts tokens; `sse` parses its event stream; `request` maps
sampling options onto its request body; `stream` drives one reply.
"""
