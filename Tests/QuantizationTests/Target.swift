// Tests of the Quantization module live beside this file.
