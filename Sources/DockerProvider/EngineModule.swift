import ConfigReader
import IdlewatcherCore
import Logging
import YAML

/// The configuration section of an Engine API runtime (`docker:`, and `podman:` with the same
/// keys): `url`, `id_prefix`, `include`, `exclude`, `protected`, TLS files.
public enum EngineSection {
    /// Reads one entry; `flavor` builds the runtime, `defaultURL` when `url` is not given.
    public static func endpoint(
        _ node: YAMLNode, path: String, reader r: inout ConfigReader, flavor: EngineFlavor, defaultURL: String,
        ownContainer: OwnContainer?
    ) -> RuntimeEndpoint? {
        let m = r.mapping(
            node, path, allowed: ["url", "id_prefix", "include", "exclude", "protected", "ca_file", "cert_file", "key_file"])
        let url = r.string(m["url"], "\(path).url") ?? defaultURL
        let prefix = r.idPrefix(m["id_prefix"], "\(path).id_prefix")
        let include = r.stringList(m["include"], "\(path).include")
        let exclude = r.stringList(m["exclude"], "\(path).exclude")
        let protected = r.stringList(m["protected"], "\(path).protected")
        let caFile = r.readableFile(m["ca_file"], "\(path).ca_file")
        let certFile = r.readableFile(m["cert_file"], "\(path).cert_file")
        let keyFile = r.readableFile(m["key_file"], "\(path).key_file")
        if (certFile == nil) != (keyFile == nil) {
            r.problem(certFile == nil ? "\(path).cert_file" : "\(path).key_file", "cert_file and key_file go together")
        }
        let configuration = DockerEndpointConfiguration(
            url: url, idPrefix: prefix, caFile: caFile, certFile: certFile, keyFile: keyFile)
        if case .failure(let e) = configuration.httpConfiguration() {
            r.problem("\(path).url", "\(e.message), got '\(url)'")
            return nil
        }
        return RuntimeEndpoint(
            kind: flavor.description.kind, url: url, idPrefix: prefix, include: include, exclude: exclude, protected: protected
        ) { logger in
            try DockerRuntime(configuration: configuration, flavor: flavor, logger: logger, ownContainer: ownContainer)
        }
    }
}

/// Docker Engine: the `docker:` section.
public enum DockerModule: RuntimeModule {
    /// Docker's description (``EngineFlavor/docker``).
    public static let description = EngineFlavor.docker.description
    /// `docker:`, one entry per engine.
    public static let section = "docker"
    /// Counted as "Docker endpoint(s)" by `check-config`.
    public static let countNoun = "Docker endpoint(s)"
    /// Counted even without an entry ("0 Docker endpoint(s)"): scripts may read that line.
    public static let countedWhenAbsent = true

    /// Reads one `docker:` entry (default URL `unix:///var/run/docker.sock`); if the bridge runs in a
    /// container of that engine, only `status` is allowed on it.
    public static func endpoint(_ node: YAMLNode, path: String, reader: inout ConfigReader) -> RuntimeEndpoint? {
        EngineSection.endpoint(
            node, path: path, reader: &reader, flavor: .docker, defaultURL: "unix:///var/run/docker.sock",
            ownContainer: OwnContainer.detect())
    }
}
