//! `lab export` and `lab import-bundle`.

use anyhow::{Context, bail};

use crate::{Setup, explain_import, open_registry};

pub(crate) fn export(ctx: &Setup, id: &str, name: Option<&str>) -> anyhow::Result<()> {
    let registry = open_registry(ctx)?;
    let run = lab_core::Run::new(registry.get(&lab_registry::RunId::parse(id)?)?);
    let allowlist = lab_fs::Allowlist::with_extra(&ctx.config.artifacts.allow)
        .context("[artifacts] allow in the config file")?;
    let name = match name {
        Some(name) => lab_fs::bundle::BundleName::parse(name)?,
        None => lab_fs::bundle::BundleName::parse(&lab_fs::bundle::default_bundle_name(
            run.id.as_str(),
            std::time::SystemTime::now(),
        ))?,
    };
    let exports_path = lab_registry::DataDir::new(&ctx.data_dir).exports();
    let exports = lab_fs::bundle::ExportsDir::open_ambient(&exports_path)?;
    let filter =
        lab_redact::export::RedactingFilter::new(lab_redact::Redactor::new(&ctx.lab_secrets));
    let info = lab_core::export_run(
        &exports,
        &name,
        &run,
        &allowlist,
        &filter,
        &ctx.format_limits(),
    )?;
    println!(
        "exported {} to {} ({} bytes, {} files)",
        run.id,
        exports_path.join(info.name.as_str()).display(),
        info.size,
        info.manifest.files.len()
    );
    Ok(())
}

pub(crate) fn import_bundle(
    ctx: &Setup,
    file: &std::path::Path,
    into: &std::path::Path,
) -> anyhow::Result<()> {
    let registry = open_registry(ctx)?;
    let into = std::fs::canonicalize(into).with_context(|| format!("--into {}", into.display()))?;
    if !into.is_dir() {
        bail!("--into {} is not a directory", into.display());
    }
    if !registry.is_under_allowed_root(&into) {
        return Err(explain_import(
            &registry,
            lab_registry::Error::OutsideAllowedRoots,
        ));
    }
    // The bundle becomes a `lab` run: what that format serves.
    let allowlist = lab_fs::Allowlist::with_extra(&ctx.config.artifacts.allow)
        .context("[artifacts] allow in the config file")?
        .plus(lab_core::formats::Format::Lab.artifact_patterns())?;
    let bundle = std::fs::File::open(file).with_context(|| format!("bundle {}", file.display()))?;
    let unpacked = lab_fs::bundle::unpack_bundle_ambient(
        std::io::BufReader::new(bundle),
        &into,
        None,
        &allowlist,
    )
    .with_context(|| format!("bundle {}", file.display()))?;
    let wanted = unpacked.manifest.source_run.as_str();
    let run = match registry.import(&unpacked.dir, Some(wanted)) {
        Err(lab_registry::Error::IdTaken(_)) => registry.import(&unpacked.dir, None)?,
        other => other?,
    };
    println!(
        "imported bundle as {} at {} ({} files verified)",
        run.id,
        run.root.display(),
        unpacked.manifest.files.len()
    );
    Ok(())
}
