//! What an overlay renders: `kubectl kustomize`, the objects, and the upsoak pods as the
//! kubelet would start them (command, args, env, mounted ConfigMaps and Secrets).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{Error, Result};

/// The kubectl the rehearsal needs: `kubectl kustomize` of our overlays needs kustomize v5
/// (`labels`, `components`), first in kubectl 1.27.
pub const KUBECTL_MIN_MINOR: u64 = 27;

/// Every object an overlay renders, in order.
pub struct Rendered {
    pub overlay: PathBuf,
    pub objects: Vec<Value>,
}

/// `kubectl version --client` minor, or why it cannot be used.
pub fn check_kubectl() -> Result<()> {
    let out = Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .map_err(|e| Error::Input(format!("cannot run `kubectl`: {e} (kubectl >= 1.{KUBECTL_MIN_MINOR} is needed; `make deps` says how to get one)")))?;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let minor = v["clientVersion"]["minor"]
        .as_str()
        .and_then(|m| m.trim_end_matches('+').parse::<u64>().ok())
        .unwrap_or(0);
    if minor < KUBECTL_MIN_MINOR {
        return Err(Error::Input(format!(
            "kubectl 1.{minor} cannot render the overlays: kubectl >= 1.{KUBECTL_MIN_MINOR} is needed (`make deps` says how to get one)"
        )));
    }
    Ok(())
}

impl Rendered {
    /// `kubectl kustomize <overlay>`, split into objects.
    pub fn kustomize(overlay: &Path) -> Result<Rendered> {
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg(overlay)
            .output()
            .map_err(|e| Error::Input(format!("cannot run `kubectl kustomize`: {e}")))?;
        if !out.status.success() {
            return Err(Error::Input(format!(
                "`kubectl kustomize {}` failed: {}",
                overlay.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut objects = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| Error::Input(format!("rendered YAML: {e}")))?;
            let v =
                serde_json::to_value(v).map_err(|e| Error::Input(format!("rendered YAML: {e}")))?;
            if !v.is_null() {
                objects.push(v);
            }
        }
        Ok(Rendered {
            overlay: overlay.to_owned(),
            objects,
        })
    }

    /// Objects of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Value> + 'a {
        let kind = kind.to_owned();
        self.objects
            .iter()
            .filter(move |o| o["kind"] == kind.as_str())
    }

    /// The object `kind` `namespace/name`.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.of_kind(kind)
            .find(|o| o["metadata"]["name"] == name && namespace_of(o) == namespace)
    }

    /// The data of a ConfigMap or Secret, decoded (a Secret's `data` is base64, `stringData`
    /// plain text, as the API server merges them).
    pub fn data(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        let o = self.get(kind, namespace, name)?;
        let mut m = BTreeMap::new();
        if let Some(d) = o["data"].as_object() {
            for (k, v) in d {
                let text = v.as_str().unwrap_or_default();
                let text = if kind == "Secret" {
                    String::from_utf8_lossy(&base64_decode(text)?).into_owned()
                } else {
                    text.to_owned()
                };
                m.insert(k.clone(), text);
            }
        }
        if let Some(d) = o["stringData"].as_object() {
            for (k, v) in d {
                m.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
            }
        }
        Some(m)
    }

    /// The upsoak Deployments (label `app.kubernetes.io/part-of: upsoak`), as pods.
    pub fn pods(&self) -> Result<Vec<Pod>> {
        self.of_kind("Deployment")
            .filter(|d| d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "upsoak")
            .map(|d| Pod::from_deployment(self, d))
            .collect()
    }
}

/// An object's namespace (`default` when it names none).
pub fn namespace_of(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("default")
}

/// A volume mounted into a container, its files already resolved.
#[derive(Clone, Debug)]
pub enum Volume {
    /// Files (ConfigMap or Secret keys, or one with `subPath`).
    Files(BTreeMap<String, String>),
    /// An empty directory kept for the pod's life (emptyDir, a PersistentVolumeClaim).
    Dir,
}

/// One container as the kubelet would start it.
#[derive(Clone, Debug)]
pub struct Container {
    pub name: String,
    pub init: bool,
    /// `command` then `args`.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// mount path → what is mounted there.
    pub mounts: Vec<(String, Volume)>,
    /// Named container ports.
    pub ports: BTreeMap<String, u16>,
}

/// A Deployment's pod: its labels and containers.
#[derive(Clone, Debug)]
pub struct Pod {
    pub deployment: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub containers: Vec<Container>,
}

impl Pod {
    fn from_deployment(r: &Rendered, d: &Value) -> Result<Pod> {
        let deployment = d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let namespace = namespace_of(d).to_owned();
        let spec = &d["spec"]["template"]["spec"];
        let labels = string_map(&d["spec"]["template"]["metadata"]["labels"]);
        let volumes: BTreeMap<String, &Value> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["name"].as_str()?.to_owned(), v)))
            .collect();
        let pod_name = format!("{deployment}-rehearsal");
        let mut containers = Vec::new();
        for (init, list) in [
            (true, &spec["initContainers"]),
            (false, &spec["containers"]),
        ] {
            for c in list.as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default().to_owned();
                let at = format!("Deployment {namespace}/{deployment} container {name}");
                let mut argv: Vec<String> = strings(&c["command"]);
                if argv.is_empty() {
                    return Err(Error::Finding(format!(
                        "{at}: no `command`; the image's entrypoint is not part of what renders"
                    )));
                }
                argv.extend(strings(&c["args"]));
                let mut env = Vec::new();
                for e in c["envFrom"].as_array().into_iter().flatten() {
                    for (kind, key) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
                        let Some(src) = e[key]["name"].as_str() else {
                            continue;
                        };
                        match r.data(kind, &namespace, src) {
                            Some(m) => env.extend(m),
                            None if e[key]["optional"] == true => {}
                            None => {
                                return Err(Error::Finding(format!(
                                    "{at}: envFrom {kind} {namespace}/{src} is not rendered (the pod would not start)"
                                )));
                            }
                        }
                    }
                }
                for e in c["env"].as_array().into_iter().flatten() {
                    let key = e["name"].as_str().unwrap_or_default().to_owned();
                    if let Some(v) = e["value"].as_str() {
                        env.push((key, v.to_owned()));
                        continue;
                    }
                    let from = &e["valueFrom"];
                    if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
                        let v = match path {
                            "metadata.namespace" => namespace.clone(),
                            "metadata.name" => pod_name.clone(),
                            other => {
                                return Err(Error::Finding(format!(
                                    "{at}: env {key} from fieldRef `{other}` is not modelled"
                                )));
                            }
                        };
                        env.push((key, v));
                        continue;
                    }
                    for (kind, k) in [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")]
                    {
                        let sel = &from[k];
                        let Some(src) = sel["name"].as_str() else {
                            continue;
                        };
                        let want = sel["key"].as_str().unwrap_or_default();
                        match r
                            .data(kind, &namespace, src)
                            .and_then(|m| m.get(want).cloned())
                        {
                            Some(v) => env.push((key.clone(), v)),
                            None if sel["optional"] == true => {}
                            None => {
                                return Err(Error::Finding(format!(
                                    "{at}: env {key} from {kind} {namespace}/{src} key {want} is not rendered"
                                )));
                            }
                        }
                    }
                }
                let mut mounts = Vec::new();
                for m in c["volumeMounts"].as_array().into_iter().flatten() {
                    let path = m["mountPath"].as_str().unwrap_or_default().to_owned();
                    let vname = m["name"].as_str().unwrap_or_default();
                    let Some(v) = volumes.get(vname) else {
                        return Err(Error::Finding(format!(
                            "{at}: volumeMount {vname} names no volume"
                        )));
                    };
                    let files = |kind: &str, key: &str, name_key: &str| -> Result<Option<Volume>> {
                        let Some(src) = v[key][name_key].as_str() else {
                            return Ok(None);
                        };
                        match r.data(kind, &namespace, src) {
                            Some(mut files) => {
                                if let Some(sub) = m["subPath"].as_str() {
                                    files.retain(|k, _| k == sub);
                                }
                                Ok(Some(Volume::Files(files)))
                            }
                            None if v[key]["optional"] == true => Ok(Some(Volume::Dir)),
                            None => Err(Error::Finding(format!(
                                "{at}: volume {vname} mounts {kind} {namespace}/{src}, which is not rendered (the pod would not start)"
                            ))),
                        }
                    };
                    let vol = if let Some(f) = files("ConfigMap", "configMap", "name")? {
                        f
                    } else if let Some(f) = files("Secret", "secret", "secretName")? {
                        f
                    } else if v.get("emptyDir").is_some()
                        || v.get("persistentVolumeClaim").is_some()
                    {
                        Volume::Dir
                    } else {
                        return Err(Error::Finding(format!(
                            "{at}: volume {vname}: only configMap, secret, emptyDir and persistentVolumeClaim are modelled"
                        )));
                    };
                    mounts.push((path, vol));
                }
                let ports = c["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        Some((
                            p["name"].as_str()?.to_owned(),
                            u16::try_from(p["containerPort"].as_u64()?).ok()?,
                        ))
                    })
                    .collect();
                containers.push(Container {
                    name,
                    init,
                    argv,
                    env,
                    mounts,
                    ports,
                });
            }
        }
        Ok(Pod {
            deployment,
            namespace,
            labels,
            containers,
        })
    }

    /// The container port a Service's `targetPort` (a name or a number) reaches.
    pub fn port(&self, target: &Value) -> Option<u16> {
        if let Some(n) = target.as_u64() {
            return u16::try_from(n).ok();
        }
        let name = target.as_str()?;
        if let Ok(n) = name.parse() {
            return Some(n);
        }
        self.containers
            .iter()
            .find_map(|c| c.ports.get(name).copied())
    }
}

/// A string list (`command`, `args`).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// A map of strings (labels).
pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// Whether `labels` satisfy a label selector (`matchLabels`, `matchExpressions` with In,
/// NotIn, Exists, DoesNotExist; k8s.io/apimachinery `LabelSelectorAsSelector`). An empty
/// selector selects everything.
pub fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let plain = selector
        .as_object()
        .is_some_and(|o| !o.contains_key("matchLabels") && !o.contains_key("matchExpressions"));
    let match_labels = if plain {
        selector
    } else {
        &selector["matchLabels"]
    };
    for (k, v) in string_map(match_labels) {
        if labels.get(&k) != Some(&v) {
            return false;
        }
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values = strings(&e["values"]);
        let has = labels.get(key);
        let ok = match e["operator"].as_str().unwrap_or_default() {
            "In" => has.is_some_and(|v| values.contains(v)),
            "NotIn" => has.is_none_or(|v| !values.contains(v)),
            "Exists" => has.is_some(),
            "DoesNotExist" => has.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Standard base64 (RFC 4648, with padding), as Kubernetes stores a Secret's `data`.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_what_kustomize_writes() {
        assert_eq!(base64_decode("dG9rZW4=").unwrap(), b"token");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("a*b").is_none());
    }

    #[test]
    fn selectors_follow_the_label_selector_rules() {
        let labels: BTreeMap<String, String> =
            [("agones.dev/role".to_owned(), "controller".to_owned())].into();
        let sel = serde_json::json!({"matchExpressions": [{"key": "agones.dev/role", "operator": "In", "values": ["controller", "extensions"]}]});
        assert!(selects(&sel, &labels));
        let sel = serde_json::json!({"matchLabels": {"agones.dev/role": "extensions"}});
        assert!(!selects(&sel, &labels));
        assert!(selects(&serde_json::json!({}), &labels));
        let sel = serde_json::json!({"matchExpressions": [{"key": "x", "operator": "Exists"}]});
        assert!(!selects(&sel, &labels));
    }
}
