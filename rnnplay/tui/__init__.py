"""The Textual terminal app: the only package of rnnplay that imports textual."""
