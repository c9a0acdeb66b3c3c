"""Models: sequence models and attention (theory chapters), the Transformer, ViT and CNNs.

Import from the submodules (``helpers.models.seq``, ``helpers.models.attention``,
``helpers.models.transformer``, ``helpers.models.vit``, ``helpers.models.deit``, ``helpers.models.hybrid``,
``helpers.models.pretrained``, ``helpers.models.vision``).
"""
