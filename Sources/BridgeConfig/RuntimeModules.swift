import ConfigReader
import DockerProvider
import PodmanProvider
import ProxmoxProvider

/// Every runtime the bridge can drive: its configuration section, its endpoints, its topics.
/// Adding a runtime is a module of its own plus one entry here (docs/architecture.md).
/// (Computed: a stored global of metatypes is not `Sendable` in Swift 6.)
var runtimeModules: [any RuntimeModule.Type] { [DockerModule.self, ProxmoxModule.self, PodmanModule.self] }
