"""tokenfab: design and price LLM-inference hardware.

The pipeline flows one way: catalog -> hardware/model -> perf (step cost) -> serve -> economics -> search.
"""

__version__ = "0.1.0"
