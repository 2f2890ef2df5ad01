import ArgumentParser
import Foundation
import DESFormat
import DESKit
import DESNaming

#if canImport(Glibc)
import Glibc
#endif

/// Exit codes of `des` (sysexits-style), shown in `des --help`.
enum DESExit {
    static let failure: Int32 = 1
    static let usage: Int32 = 64
    static let dataError: Int32 = 65
    static let noInput: Int32 = 66
    static let unavailable: Int32 = 69
    static let software: Int32 = 70
    static let cantCreate: Int32 = 73
    /// A server refused the credentials (sysexits' EX_NOPERM).
    static let noPermission: Int32 = 77
    static let ioError: Int32 = 74
    /// A catalog table does not fit its mapping (sysexits' EX_CONFIG): a mapped column is missing
    /// or of a type DES cannot use; `des catalog check` says what to add.
    static let catalog: Int32 = 78
}

/// An error the CLI reports as one line with a chosen exit code.
struct CLIFailure: Error {
    var message: String
    var exitCode: Int32
}

/// Runs a command body, turning any error into one line on stderr and a meaningful exit code.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch { throw reported(error) }
}

/// The async form of ``reportingErrors(_:)``.
func reportingErrorsAsync(_ body: () async throws -> Void) async throws {
    do { try await body() } catch { throw reported(error) }
}

/// Prints an error as one line and returns the exit code to throw (exits pass through).
private func reported(_ error: Error) -> Error {
    if error is ExitCode || error is CleanExit { return error }
    let (message, code) = describe(error)
    Terminal.error(message)
    return ExitCode(code)
}

/// The message and exit code for an error.
func describe(_ error: Error) -> (String, Int32) {
    switch error {
    case let e as CLIFailure:
        return (e.message, e.exitCode)
    case let e as OutputFileError:
        return (e.description, e.exitCode)
    case let e as DESFormatError:
        let code: Int32
        if e.code.isCorruption {
            code = DESExit.dataError
        } else if e.code == .notFound || e.errno == ENOENT {
            code = DESExit.noInput
        } else if e.code == .outputExists {
            code = DESExit.cantCreate
        } else if e.code == .io {
            code = DESExit.ioError
        } else {
            code = DESExit.dataError
        }
        let prefix = e.code.isCorruption ? "corrupt archive: " : ""
        var message = e.message
        if e.code == .outputExists { message = "already exists (pass --force to replace it)" }
        if e.code == .invalidName { message = message.replacingOccurrences(of: "pass skipInvalidNames", with: "pass --skip-invalid-names") }
        if let path = e.path { return ("\(path): \(prefix)\(message)", code) }
        return (prefix + message, code)
    case let e as NamingError:
        return (e.message, e.code == .invalidConfiguration ? DESExit.usage : DESExit.dataError)
    case let e as ConfigError:
        // FILE:LINE:COL: key: message; a config file that is not there is "no input".
        return (e.description, e.code == .unreadable ? DESExit.noInput : DESExit.dataError)
    case let e as DESKitError:
        switch e.code {
        case .configuration, .unknownPlugin, .invalidData: return (e.message, DESExit.dataError)
        case .notFound: return (e.message, DESExit.noInput)
        case .unavailable: return (e.message, DESExit.unavailable)
        case .authentication: return (e.message, DESExit.noPermission)
        case .catalog: return (e.message, DESExit.catalog)
        default: return (e.message, DESExit.failure)
        }
    case let e as SQLError:
        if e.isAuthenticationFailure { return (e.description, DESExit.noPermission) }
        return (e.description, e.isTransient ? DESExit.unavailable : DESExit.failure)
    default:
        return ("\(error)", DESExit.software)
    }
}
