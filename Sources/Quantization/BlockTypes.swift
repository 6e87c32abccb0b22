import TensorGraph

/// The one registry of ggml block types Smelt handles (each described once, in `Blocks/`), and the
/// public view of what Smelt can do with each.
public enum BlockTypes {
    /// Every codec. Adding a type: its file in `Blocks/`, and one line here.
    static let registry: [any QuantBlock.Type] = [
        F32Block.self, F16Block.self, BF16Block.self,
        Q4_0Block.self, Q4_1Block.self, Q5_0Block.self, Q5_1Block.self, Q8_0Block.self, Q8_KBlock.self,
        Q2_KBlock.self, Q3_KBlock.self, Q4_KBlock.self, Q5_KBlock.self, Q6_KBlock.self,
        IQ4_NLBlock.self, IQ4_XSBlock.self,
        MXFP4Block.self, NVFP4Block.self, TQ1_0Block.self, TQ2_0Block.self,
    ]

    /// The codecs by type.
    static let codecs: [DType: any QuantBlock.Type] = Dictionary(uniqueKeysWithValues: registry.map { ($0.dtype, $0) })

    /// What Smelt can do with one block type.
    public struct Descriptor: Sendable {
        public let dtype: DType
        /// Values per block, bytes per block and the byte layout (from `DType.table`).
        public var blockSize: Int { dtype.blockSize }
        public var bytesPerBlock: Int { dtype.bytesPerBlock }
        public var fields: [DType.BlockField] { dtype.info.fields }
        /// Smelt decodes it (bit-identical to ggml's `dequantize_row_*`).
        public let decodes: Bool
        /// Smelt encodes it, byte for byte as llama-quantize does, with and without an importance
        /// matrix (`Quantize.rows`, `Quantize.weightedRows`).
        public let encodes: Bool
        /// Its 32-value blocks are a code grid `code × d + m`: importance-weighted scale search and
        /// GPTQ (each block's scale chosen when the walk reaches it, columns rounded onto it) can
        /// produce it. The lowest and highest code, and whether blocks carry an offset.
        public let grid: (lo: Int32, hi: Int32, offset: Bool)?
        /// Whether and how GPTQ rounds onto it (`GPTQGrid`): columns per block and per scale
        /// group, and the levels codes stand for; nil when it cannot.
        public let gptq: GPTQGrid.Layout?
        /// The type llama.cpp's CPU backend rounds activations to before a product with it.
        public let activation: DType?
    }

    /// The descriptor of `dtype`, or nil when Smelt has no codec for it.
    public static func descriptor(_ dtype: DType) -> Descriptor? {
        guard let c = codecs[dtype] else { return nil }
        let g = c as? any GridBlock.Type
        return Descriptor(
            dtype: dtype, decodes: true, encodes: c is any QuantEncodable.Type,
            grid: g.map { ($0.codeRange.lo, $0.codeRange.hi, $0.hasOffset) }, gptq: GPTQGrid.layout(dtype),
            activation: c.activation)
    }

    /// Every descriptor, in `DType` order.
    public static var all: [Descriptor] { DType.allCases.compactMap(descriptor) }
}
