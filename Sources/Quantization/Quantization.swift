// Block quantization types of ggml: decoders (dequantization to f32, bit-identical to ggml's reference C)
// and the reference round-to-nearest encoders for Q8_0, Q4_0 and Q4_1.
//
//   Blocks/           one file per family: the byte layout of each block and its decoder / encoder
//   Dequantize.swift  `Dequantize`: the DType → decoder table, whole-buffer decoding
//   Quantize.swift    `Quantize`: the DType → encoder table, whole-buffer encoding
//   LazyTensor.swift  `Tensor.dequantized(to:)`, `Tensor.quantized(to:)`: lazy, range-by-range
//   Parallel.swift    splitting large buffers over cores
