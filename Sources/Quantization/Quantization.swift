// Block quantization types of ggml: decoders (dequantization to f32, bit-identical to ggml's reference C)
// and encoders byte-identical to llama-quantize's (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K…Q6_K, IQ4_NL,
// IQ4_XS; with and without importance weights).
//
//   Blocks/           one file per type (or small family): its descriptor — layout constants checked
//                     against DType.table, decoder, encoders, code grid, activation type;
//                     GGMLSearch.swift holds the scale searches ggml's quantizers share
//   BlockTypes.swift  the registry (one line per type) and the public `BlockTypes.Descriptor`
//   BlockGrid.swift   code grids for scale search and GPTQ
//   GPTQGrid.swift    how GPTQ rounds onto each type (super-block d/dmin, group scale codes, packing)
//   WeightedQuantize  importance-matrix quantization (Smelt's search or ggml's)
//   Dequantize.swift  `Dequantize`: the DType → decoder table, whole-buffer decoding
//   Quantize.swift    `Quantize`: the DType → encoder table, whole-buffer encoding
//   LazyTensor.swift  `Tensor.dequantized(to:)`, `Tensor.quantized(to:)`: lazy, range-by-range
//   Parallel.swift    splitting large buffers over cores
