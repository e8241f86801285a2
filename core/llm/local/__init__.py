"""The bundled local model: loading and caching it (`loader`), a fast decoder for its Llama
architecture (`decoder`), and the process-wide instance that turns tokens into text (`engine`).

Import the submodules; this package imports nothing heavy itself, so `core.llm` stays light.
"""
