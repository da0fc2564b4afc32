"""Keras 3 models: the project's own MLP, a model the user brings, and the surgery on both.

Loading a model runs one way, each step in one module that imports only those before it:
- `files`: reading a .keras file (safe mode, its weights finite), how it was compiled, copies;
- `inputs`: how a model reads the columns (`InputContract`), and a saved one's columns checked;
- `outputs`: the task, the output layer, a brought model's labels and logits, the optimizer
  and loss of training;
- `bundle`: a model with how it reads the columns and names its outputs (`ModelBundle`);
- `loading`: the entry: a brought Keras file adopted for the data, a bundle opened for it.

Then what changes a model:
- `vocabulary`: growing a text layer's vocabulary;
- `surgery`: growing the output, fine-tuning heads, fresh weights;
- `build`: the project's MLP, and a model with fresh weights for some splits.
"""
