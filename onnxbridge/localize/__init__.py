"""Where a model goes wrong: the first diverging module, layer or node, and the first stage that broke parity.

Modules (import the one you need; this package imports nothing on its own):

- ``metadata``: what the exporters write on ONNX nodes, stamped at export and carried through rewrites;
- ``origins``: node -> module call (scope, call index, class, source line);
- ``graph``: graph order, value sizes, and fetching intermediate values from ONNX Runtime;
- ``compare`` / ``pairing``: per-tensor scores, and pairing framework tensors with ONNX values;
- ``descent``: the framework-neutral search (budgeted descent over the call tree);
- ``torch_side`` / ``keras_side`` / ``onnx_side``: the three directions;
- ``stages``: which step of the chain broke parity; ``extract``: the minimal failing subgraph;
- ``plot``: the per-layer error plot of the reports.
"""
