// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "idlewatcher-bridge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "idlewatcher-bridge", targets: ["idlewatcher-bridge"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // C libraries, each behind one thin Swift module. No C pointer leaves those modules.
        .systemLibrary(
            name: "CMosquitto", pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]),
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .systemLibrary(
            name: "CYAML", pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]),

        // The vocabulary: provider protocol, statuses, signals, events, errors. No I/O.
        .target(name: "IdlewatcherCore", swiftSettings: strict),

        // Thin wrappers around the C libraries.
        .target(name: "YAML", dependencies: ["CYAML"], swiftSettings: strict),
        .target(
            name: "HTTPClient",
            dependencies: ["CCurl", "IdlewatcherCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .target(
            name: "MQTTClient",
            dependencies: [
                "CMosquitto", "IdlewatcherCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),

        // One module per runtime.
        .target(
            name: "DockerProvider",
            dependencies: [
                "IdlewatcherCore", "HTTPClient", "ConfigReader", "YAML", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "ProxmoxProvider",
            dependencies: [
                "IdlewatcherCore", "HTTPClient", "ConfigReader", "YAML", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // The MQTT surface: topics, commands, replies, statuses, resync, discovery.
        .target(
            name: "Bridge",
            dependencies: [
                "IdlewatcherCore", "MQTTClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),

        // Reading a configuration file with `path: problem` lines; the protocol a runtime module
        // implements for its section.
        .target(
            name: "ConfigReader",
            dependencies: ["IdlewatcherCore", "YAML", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),

        // Extensions around the bridge, each a module of its own on the extension context.
        .target(
            name: "HomeAssistant",
            dependencies: ["IdlewatcherCore", "Bridge", "MQTTClient", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),

        // The idlewatcher: idle timers, leases, dependencies; an extension on the command service.
        .target(
            name: "IdlePolicy",
            dependencies: ["IdlewatcherCore", "Bridge", "MQTTClient", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),

        // Podman: the Engine API module with Podman's flavor.
        .target(
            name: "PodmanProvider",
            dependencies: [
                "IdlewatcherCore", "DockerProvider", "ConfigReader", "YAML", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // The YAML configuration, its validation and the wiring of runtimes from it.
        .target(
            name: "BridgeConfig",
            dependencies: [
                "IdlewatcherCore", "Bridge", "HomeAssistant", "IdlePolicy", "MQTTClient", "ConfigReader", "DockerProvider",
                "PodmanProvider",
                "ProxmoxProvider", "HTTPClient",
                "YAML",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        .executableTarget(
            name: "idlewatcher-bridge",
            dependencies: [
                "BridgeConfig", "Bridge", "MQTTClient", "IdlewatcherCore", "IdlePolicy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),

        // Test support shipped beside the code: real mosquitto, real dockerd, the bridge process.
        .target(
            name: "IdlewatcherTesting",
            dependencies: ["IdlewatcherCore"],
            swiftSettings: strict),

        .testTarget(
            name: "YAMLTests",
            dependencies: ["YAML"],
            swiftSettings: strict),
        .testTarget(
            name: "IdlewatcherCoreTests",
            dependencies: [
                "IdlewatcherCore", "BridgeConfig", "Bridge", "HomeAssistant", "IdlewatcherTesting", "DockerProvider",
                "PodmanProvider", "ProxmoxProvider", "MQTTClient", "IdlePolicy", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "BridgeTests",
            dependencies: ["IdlewatcherTesting", "IdlewatcherCore", "idlewatcher-bridge", "MQTTClient"],
            swiftSettings: strict),
        .testTarget(
            name: "ProxmoxProviderTests",
            dependencies: ["IdlewatcherTesting", "IdlewatcherCore", "ProxmoxProvider", "HTTPClient", "idlewatcher-bridge"],
            swiftSettings: strict),
        .testTarget(
            name: "DeploymentTests",
            dependencies: ["IdlewatcherTesting"],
            swiftSettings: strict),
    ]
)
