// Block quantization types: see Blocks/.
