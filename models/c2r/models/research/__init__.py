"""The research pipeline: reproduce RealMaster, not only run it.

``c2r datagen`` (datagen.py: anchor propagation with editor.py's Qwen-Image-Edit and VACE;
C2R real-footage pairs with monodepth.py), ``c2r train`` (train.py over train_data.py's
latent cache; defaults in realmaster.toml) and ``c2r eval`` (evaluate.py over temporal.py,
structure.py and faces.py). Everything here imports torch; the CLI modules import it lazily.
"""
