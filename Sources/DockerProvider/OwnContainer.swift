#if canImport(Glibc)
    import Glibc
#endif

/// The Docker container this process runs in, if it runs in one.
///
/// A bridge in a container with the Docker socket mounted could otherwise be told to stop,
/// kill or pause itself (and with it every reply and status): the runtime treats that
/// container as protected, so only `status` is allowed on it.
public struct OwnContainer: Sendable, Hashable {
    /// The full container id (64 hex digits) or, when only the host name gives it away, its
    /// 12-digit prefix (Docker's default host name for a container).
    public let id: String

    /// The container with this id: 64 or 12 hex digits; nil for anything else.
    public init?(id: String) {
        guard id.count == 64 || id.count == 12, id.utf8.allSatisfy(Self.isHex) else { return nil }
        self.id = id
    }

    /// Whether `ref` (a full container id from the Engine API) is this container.
    public func matches(_ ref: String) -> Bool { ref.hasPrefix(id) }

    /// Reads `/proc/self/mountinfo` (Docker bind-mounts `/etc/hostname` from
    /// `/var/lib/docker/containers/<id>/`, with cgroup v1 and v2 alike), then `/proc/self/cgroup`
    /// (cgroup v1, or v2 without a private cgroup namespace), then `$HOSTNAME`.
    public static func detect() -> OwnContainer? {
        let hostname = getenv("HOSTNAME").map { String(cString: $0) }
        return find(mountinfo: readFile("/proc/self/mountinfo"), cgroup: readFile("/proc/self/cgroup"), hostname: hostname)
    }

    /// The detection on given texts (for tests).
    public static func find(mountinfo: String?, cgroup: String?, hostname: String?) -> OwnContainer? {
        // The file mounted on /etc/hostname: …/docker/containers/<id>/hostname, or
        // …/overlay-containers/<id>/userdata/hostname (Podman). Only that mount point: on the
        // host itself mountinfo lists other containers' …/containers/<id>/mounts/shm.
        for line in (mountinfo ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 4, ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"].contains(fields[4]) else { continue }
            if let id = hexRun(in: fields[3], after: "containers/", terminator: "/") { return OwnContainer(id: id) }
        }
        // 12:memory:/docker/<id>, 0::/system.slice/docker-<id>.scope, …/libpod-<id>.scope
        for line in (cgroup ?? "").split(separator: "\n") {
            for marker in ["/docker/", "docker-", "libpod-"] {
                if let id = hexRun(in: line, after: marker, terminator: nil) { return OwnContainer(id: id) }
            }
        }
        if let h = hostname, h.count == 12, h.utf8.allSatisfy({ isHex($0) && !(65...70).contains($0) }) {
            return OwnContainer(id: h)
        }
        return nil
    }

    /// 64 hex digits right after `marker`, then `terminator` (or anything that is not hex).
    private static func hexRun(in line: Substring, after marker: String, terminator: String?) -> String? {
        var rest = line[...]
        while let r = rest.firstRange(of: marker) {
            let candidate = rest[r.upperBound...].prefix(65)
            let digits = candidate.prefix(64)
            if digits.count == 64, digits.utf8.allSatisfy(isHex) {
                let next = candidate.dropFirst(64).first
                let ends: Bool
                if let terminator {
                    ends = next.map(String.init) == terminator
                } else {
                    ends = !(next?.asciiValue.map(isHex) ?? false)
                }
                if ends { return String(digits).lowercased() }
            }
            rest = rest[r.upperBound...]
        }
        return nil
    }

    private static func isHex(_ b: UInt8) -> Bool { (48...57).contains(b) || (97...102).contains(b) || (65...70).contains(b) }

    private static func readFile(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        while bytes.count < 4 << 20 {
            let n = fread(&buf, 1, buf.count, f)
            if n > 0 { bytes.append(contentsOf: buf[0..<n]) }
            if n < buf.count { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
