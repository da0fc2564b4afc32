"""Keras 3 models: the project's own MLP, a model the user brings, and the surgery on both.

- `files`: loading a .keras file (safe mode, its weights finite), how it was compiled, copies;
- `bundle`: a model with how it reads the columns and names its outputs (`ModelBundle`);
- `outputs`: the output layer, a brought model's logits, the optimizer and loss of training;
- `surgery`: growing the output, fine-tuning heads, fresh weights;
- `build`: the project's MLP, and a model with fresh weights for some splits;
- `brought`: a model the user brings, adopted for the data (its contract, labels, output).
"""

