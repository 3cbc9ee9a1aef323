import IdlewatcherCore

#if canImport(Glibc)
    import Glibc
#endif

/// The bridge's health, as `idlewatcher-bridge health` reads it: a small JSON file rewritten
/// every `healthInterval` (atomically), saying whether the broker and each runtime answer.
extension Bridge {
    /// Writes the health file until cancelled.
    func reportHealth(to path: String) async {
        while !Task.isCancelled {
            await writeHealth(to: path)
            try? await Task.sleep(for: settings.healthInterval)
        }
    }

    func writeHealth(to path: String) async {
        var runtimes: [String] = []
        var allUp = true
        for i in bindings.indices {
            let e = await registry.endpoint(i)
            allUp = allUp && e.available
            var w = JSONWriter()
            w.add("runtime", bindings[i].runtime.kind.rawValue)
            w.add("endpoint", bindings[i].runtime.endpoint)
            w.add("available", e.available)
            if let error = e.lastError, !e.available { w.add("error", error.message) }
            runtimes.append(w.finish())
        }
        var w = JSONWriter()
        w.add("bridge", settings.bridgeID)
        w.add("pid", Int64(getpid()))
        w.add("updated", Timestamp.now().seconds)
        w.add("mqtt", mqtt.isConnected)
        w.add("healthy", mqtt.isConnected && allUp)
        w.addRaw("runtimes", "[" + runtimes.joined(separator: ",") + "]")
        let text = w.finish() + "\n"
        let tmp = path + ".tmp"
        guard let f = fopen(tmp, "w") else {
            logger.debug("cannot write the health file \(tmp): \(String(cString: strerror(errno)))")
            return
        }
        fputs(text, f)
        fclose(f)
        rename(tmp, path)
    }

    func removeHealthFile() {
        if let path = settings.healthFile { unlink(path) }
    }
}
