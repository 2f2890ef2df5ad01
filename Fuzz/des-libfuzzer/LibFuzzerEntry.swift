// des-libfuzzer: the DESFuzz targets as a coverage-guided libFuzzer binary.
//
// Built by `scripts/libfuzzer.sh` with
//   -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -D -Xswiftc DES_LIBFUZZER
// which links libFuzzer's own main. In an ordinary build it is a stub that says how to build it.
// The target is chosen by DES_FUZZ_TARGET (archive, the default, or config).
import DESFuzz
import Foundation

nonisolated(unsafe) private var scratch: FuzzScratch?
private let target = ProcessInfo.processInfo.environment["DES_FUZZ_TARGET"] ?? "archive"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if scratch == nil { scratch = try? FuzzScratch() }
    guard let scratch else { return 0 }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTargets.run(target, bytes, scratch: scratch)
    return 0
}

#if DES_LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// libFuzzer's driver, with this module's entry point (SwiftPM names every executable's main).
@main
struct LibFuzzerMain {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
    }
}
#else
/// Without the fuzzer runtime there is nothing to run: say how to build the real thing.
@main
struct LibFuzzerStub {
    static func main() {
        FileHandle.standardError.write(Data("des-libfuzzer: build it with scripts/libfuzzer.sh; this build has no fuzzer\n".utf8))
        exit(64)
    }
}
#endif
