"""Deployment variants of an fp32 ONNX model (fp16, bf16, int8, int8-static, int4, the ORT format),
each built with ONNX Runtime's own tools and written only when it keeps its accuracy budget and runs
faster than fp32 on the provider that will run it.

``stage.run_variants`` is the stage; ``kinds/`` declares each kind (registered in ``registry``), ``build``
runs a kind's builder, ``precision`` / ``mixed`` /
``search`` the fp16 / bf16 conversion and its fp32 islands, ``quantize`` / ``calibration`` int8 and int4,
``ortformat`` the ORT format and the mobile check, ``accuracy`` the metrics and the budget.
"""
