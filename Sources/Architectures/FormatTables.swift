/// The JSON tables of formats/ that other modules read (the quantization recipe), embedded in the
/// binary by scripts/embed_tables.py.
public enum FormatTables {
    /// The text of `formats/<path>` (say, `quant-recipe.json`), when it is embedded.
    public static func text(_ path: String) -> String? { EmbeddedTables.files[path] }

    /// The embedded paths under `folder` (say, `recipes/`), sorted.
    public static func paths(in folder: String) -> [String] { EmbeddedTables.files.keys.filter { $0.hasPrefix(folder) }.sorted() }
}
