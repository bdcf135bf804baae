"""C2R (Coarse-to-Real) on the stock diffusers Wan transformer.

One job per module: ``dino`` (DINOv3 patch features of the coarse colour frames),
``adapter`` (features -> control tokens, and the bridge), ``injection`` (hooks that add the
control tokens to a stock ``WanTransformer3DModel``), ``checkpoint`` (the released files),
``guidance`` (APG with momentum, plain CFG), ``frame_rate`` (the model's 16 fps and back),
``weights`` (where the four parts live, tiny in-process ones), ``pipeline`` (one window),
``backend`` (the project's ``Backend``), ``memory`` (planning figures).
Facts about the released model: shared/C2R.md; this is our own code.
"""
