import DESKit
import Logging

/// What `des dlq retry` and `resolve` do with open dead letters: send their rows back to the
/// stage that failed them, or only close the letters.
///
/// A row goes back first and its letter is closed after, so a crash between the two leaves a
/// letter for a row that is back in play (it fails again under that same letter, or succeeds and
/// the letter is closed by the next retry) — never a failed row without its letter.
public struct DeadLetterDesk: Sendable {
    /// What a retry or resolve did.
    public struct Outcome: Sendable, Equatable {
        /// Letters closed.
        public var lettersClosed = 0
        /// Rows sent back to naming (marker letters).
        public var rowsToNaming = 0
        /// Rows sent back to packing (packer letters).
        public var rowsToPacking = 0
        /// Letters left open, and why (a source not in the config, a stage DES does not know).
        public var skipped: [String] = []
    }

    let sources: [any SourceConnector]
    let metadata: any MetadataStore
    let logger: Logger

    /// A desk over the config's sources and the metadata store.
    public init(sources: [any SourceConnector], metadata: any MetadataStore, logger: Logger) {
        self.sources = sources
        self.metadata = metadata
        self.logger = logger
    }

    /// Sends the rows of `letters` back to the stage that failed them, then closes the letters:
    /// a `marker` letter's row to naming, a `packer` letter's to packing, and a `retire`
    /// letter's row — still packed, its body kept — stays as it is: closing the letter lets the
    /// retire worker try it again. A row that is no longer failed (fixed by hand) is left alone
    /// and its letter closed.
    public func retry(_ letters: [DeadLetterRecord]) async throws -> Outcome {
        var outcome = Outcome()
        var closing: [Int64] = []
        let grouped = Dictionary(grouping: letters) { "\($0.letter.source)\u{0}\($0.letter.stage)" }
        for key in grouped.keys.sorted() {
            guard let group = grouped[key], let first = group.first?.letter else { continue }
            let target: FailedRowTarget?
            switch first.stage {
            case "marker": target = .naming
            case "packer": target = .packing
            case "retire": target = nil
            default:
                outcome.skipped.append("\(group.count) letter(s) of stage '\(first.stage)' (source \(first.source)): a stage DES does not know")
                continue
            }
            if let target {
                guard let source = sources.first(where: { $0.name == first.source }) else {
                    outcome.skipped.append("\(group.count) letter(s) of source '\(first.source)': not an enabled source of this config")
                    continue
                }
                let changed = try await source.returnFailedRows(group.map(\.letter.rowID), to: target)
                if target == .naming { outcome.rowsToNaming += changed } else { outcome.rowsToPacking += changed }
            }
            closing += group.map(\.id)
        }
        outcome.lettersClosed = try await metadata.resolveDeadLetters(ids: closing)
        logger.info(
            "dead letters retried",
            metadata: [
                "closed": "\(outcome.lettersClosed)", "to_naming": "\(outcome.rowsToNaming)", "to_packing": "\(outcome.rowsToPacking)",
                "skipped": "\(outcome.skipped.count)",
            ])
        return outcome
    }

    /// Closes the letters without touching their rows (the operator fixed them, or gave up on them).
    public func resolve(_ letters: [DeadLetterRecord]) async throws -> Outcome {
        var outcome = Outcome()
        outcome.lettersClosed = try await metadata.resolveDeadLetters(ids: letters.map(\.id))
        logger.info("dead letters resolved", metadata: ["closed": "\(outcome.lettersClosed)"])
        return outcome
    }
}
