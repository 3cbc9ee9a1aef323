import ConfigReader
import IdlewatcherCore
import Logging
import YAML

/// Proxmox VE: the `proxmox:` section (one entry per cluster).
public enum ProxmoxModule: RuntimeModule {
    /// Proxmox VE's description (``ProxmoxRuntime/description``).
    public static let description = ProxmoxRuntime.description
    /// `proxmox:`, one entry per cluster.
    public static let section = "proxmox"
    /// Counted as "Proxmox cluster(s)" by `check-config`.
    public static let countNoun = "Proxmox cluster(s)"
    /// Counted even without an entry ("0 Proxmox cluster(s)"): scripts may read that line.
    public static let countedWhenAbsent = true

    /// Reads one `proxmox:` entry: URL, credentials (from files or the environment), TLS, nodes, vmids,
    /// intervals. Nil without a URL or credentials; warns at start when certificate verification is off.
    public static func endpoint(_ node: YAMLNode, path: String, reader: inout ConfigReader) -> RuntimeEndpoint? {
        guard let c = configuration(node, path: path, reader: &reader) else { return nil }
        var warnings: [String] = []
        if c.insecureSkipVerify {
            warnings.append(
                "TLS certificate verification is OFF for Proxmox at \(c.url) (insecure_skip_verify): anyone on the path can read the API token. Prefer ca_file with /etc/pve/pve-root-ca.pem."
            )
        }
        return RuntimeEndpoint(kind: .proxmox, url: c.url, idPrefix: c.idPrefix, warnings: warnings) { logger in
            try ProxmoxRuntime(configuration: c, logger: logger)
        }
    }

    static func configuration(_ node: YAMLNode, path: String, reader r: inout ConfigReader) -> ProxmoxEndpointConfiguration? {
        let m = r.mapping(
            node, path,
            allowed: [
                "url", "token_id", "token_secret", "token_secret_file", "username", "password", "password_file", "realm",
                "ca_file", "insecure_skip_verify", "nodes", "vmids", "types", "poll_interval", "id_prefix",
                "request_timeout", "task_timeout",
            ])
        let url = r.string(m["url"], "\(path).url")
        if m["url"] == nil { r.problem("\(path).url", "is required, for example https://pve1.lan:8006") }
        if let url, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            r.problem("\(path).url", "must start with https:// (or http:// for a simulator), got '\(url)'")
        } else if let url,
            case .failure(let e) = ProxmoxEndpointConfiguration(url: url, credentials: .token(id: "", secret: ""))
                .httpConfiguration()
        {
            // The same check the runtime makes at start: a path or credentials in the URL.
            r.problem("\(path).url", e.message)
        }
        for key in ["token_secret", "password"] where m[key] != nil {
            r.problem("\(path).\(key)", "secrets are not read from the configuration file; use \(key)_file or the environment")
        }
        var credentials: ProxmoxEndpointConfiguration.Credentials? = nil
        let tokenID = r.string(m["token_id"], "\(path).token_id")
        let username = r.string(m["username"], "\(path).username")
        if let tokenID {
            if username != nil { r.problem("\(path).username", "use either token_id or username, not both") }
            let parts = tokenID.split(separator: "!", omittingEmptySubsequences: false)
            if parts.count != 2 || !parts[0].contains("@") || parts[1].isEmpty {
                r.problem("\(path).token_id", "must look like user@realm!tokenname, got '\(tokenID)'")
            }
            if let s = r.secret(
                file: m["token_secret_file"], "\(path).token_secret_file", env: "IDLEWATCHER_PROXMOX_TOKEN_SECRET")
            {
                credentials = .token(id: tokenID, secret: s)
            } else if m["token_secret_file"] == nil {
                r.problem(
                    "\(path).token_secret_file",
                    "the token secret is missing: set token_secret_file or IDLEWATCHER_PROXMOX_TOKEN_SECRET")
            }
        } else if let username {
            if !username.contains("@") && m["realm"] == nil {
                r.problem("\(path).username", "must be user@realm (or set realm), got '\(username)'")
            }
            if let pw = r.secret(file: m["password_file"], "\(path).password_file", env: "IDLEWATCHER_PROXMOX_PASSWORD") {
                credentials = .password(username: username, password: pw, realm: r.string(m["realm"], "\(path).realm"))
            } else if m["password_file"] == nil {
                r.problem("\(path).password_file", "the password is missing: set password_file or IDLEWATCHER_PROXMOX_PASSWORD")
            }
        } else {
            r.problem("\(path).token_id", "set token_id (with token_secret_file) or username (with password_file)")
        }
        let caFile = r.readableFile(m["ca_file"], "\(path).ca_file")
        let insecure = r.bool(m["insecure_skip_verify"], "\(path).insecure_skip_verify") ?? false
        let nodes = r.stringList(m["nodes"], "\(path).nodes")
        var vmids: [Int] = []
        if let list = m["vmids"] {
            if let seq = list.sequence {
                for (i, n) in seq.enumerated() {
                    if let v = n.text.flatMap({ Int($0) }), v >= 100, v <= 999_999_999 {
                        vmids.append(v)
                    } else {
                        r.problem("\(path).vmids[\(i)]", "must be a vmid (a whole number from 100 to 999999999)")
                    }
                }
            } else {
                r.problem("\(path).vmids", "must be a list of vmids, like [100, 105]")
            }
        }
        var types: Set<GuestType> = [.lxc]
        if m["types"] != nil {
            types = []
            for (i, t) in r.stringList(m["types"], "\(path).types").enumerated() {
                if let type = GuestType(rawValue: t.lowercased()) {
                    types.insert(type)
                } else {
                    r.problem("\(path).types[\(i)]", "must be lxc (containers) or qemu (VMs), got '\(t)'")
                }
            }
            if m["types"]?.sequence?.isEmpty == true {
                r.problem("\(path).types", "must name at least one of lxc and qemu, like [lxc, qemu]")
            }
        }
        var poll: Duration = .seconds(2)
        if let d = r.duration(m["poll_interval"], "\(path).poll_interval") {
            if d < .milliseconds(200) { r.problem("\(path).poll_interval", "must be at least 200ms") } else { poll = d }
        }
        var requestTimeout: Duration = .seconds(15)
        if let d = r.duration(m["request_timeout"], "\(path).request_timeout") {
            if d < .seconds(1) { r.problem("\(path).request_timeout", "must be at least 1s") } else { requestTimeout = d }
        }
        var taskTimeout: Duration? = nil
        if let d = r.duration(m["task_timeout"], "\(path).task_timeout") {
            if d < .seconds(1) { r.problem("\(path).task_timeout", "must be at least 1s") } else { taskTimeout = d }
        }
        let prefix = r.idPrefix(m["id_prefix"], "\(path).id_prefix")
        guard let url, let credentials else { return nil }
        var endpoint = ProxmoxEndpointConfiguration(
            url: url, credentials: credentials, caFile: caFile, insecureSkipVerify: insecure, nodes: nodes, vmids: vmids,
            pollInterval: poll, idPrefix: prefix, requestTimeout: requestTimeout)
        if let taskTimeout { endpoint.taskTimeout = taskTimeout }
        if !types.isEmpty { endpoint.types = types }
        return endpoint
    }
}
