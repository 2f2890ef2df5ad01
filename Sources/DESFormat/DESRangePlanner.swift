/// Plans batch reads: neighbouring byte ranges whose gap is at most `maxGap`
/// are merged into one read. Used by local and remote readers alike.
public enum DESRangePlanner {
    /// One read covering several entries.
    public struct Read: Sendable, Equatable {
        /// Absolute offset of the first byte to read.
        public var offset: UInt64
        /// Number of bytes to read.
        public var length: UInt64
        /// Indices (into the input array) of the entries served by this read.
        public var members: [Int]
    }

    /// Groups the ranges `(offset, length)` into reads, sorted by offset.
    /// Empty ranges are not read at all.
    public static func plan(_ ranges: [(offset: UInt64, length: UInt64)], maxGap: UInt64) -> [Read] {
        let order = ranges.indices.filter { ranges[$0].length > 0 }.sorted { ranges[$0].offset < ranges[$1].offset }
        var reads: [Read] = []
        for i in order {
            let r = ranges[i]
            if var last = reads.last {
                let lastEnd = last.offset + last.length
                if r.offset <= lastEnd || r.offset - lastEnd <= maxGap {
                    last.length = max(lastEnd, r.offset + r.length) - last.offset
                    last.members.append(i)
                    reads[reads.count - 1] = last
                    continue
                }
            }
            reads.append(Read(offset: r.offset, length: r.length, members: [i]))
        }
        return reads
    }
}
