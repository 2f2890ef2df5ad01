import HTTPTypes
import Hummingbird
import Synchronization

/// The methods each path of the router takes, so that a path that exists asked with a method it
/// does not take is answered 405 with `Allow` (RFC 9110 §15.5.6), not 404 as if it were unknown.
/// Filled once the router has all its routes (``DESHTTPServer/router()``); read only when the
/// router found no route for a request.
final class AllowedMethods: Sendable {
    private let routes = Mutex<[(pattern: [RouterPath.Element], method: HTTPRequest.Method)]>([])

    /// Takes the routes of a finished router.
    func set(_ descriptions: [Router<BasicRequestContext>.RouteDescription]) {
        routes.withLock { $0 = descriptions.map { ($0.path.components, $0.method) } }
    }

    /// The methods some route of `path` takes (sorted, each once; none: no route has the path).
    func methods(for path: String) -> [HTTPRequest.Method] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        let found = routes.withLock { routes in routes.filter { Self.matches($0.pattern, parts) }.map(\.method) }
        var seen: Set<String> = []
        return found.filter { seen.insert($0.rawValue).inserted }.sorted { $0.rawValue < $1.rawValue }
    }

    /// Whether `parts` fit `pattern`: each element its component (a capture any one), `**` the
    /// rest (one or more).
    static func matches(_ pattern: [RouterPath.Element], _ parts: [Substring]) -> Bool {
        for (i, element) in pattern.enumerated() {
            if element.description == "**" { return i < parts.count }
            guard i < parts.count, element ~= parts[i] else { return false }
        }
        return pattern.count == parts.count
    }
}
