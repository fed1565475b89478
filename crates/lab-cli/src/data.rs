//! `lab export` and `lab import-bundle`: the application does the work.

use anyhow::Context;

use crate::{Setup, explain_import, open_lab_for_bundles};

pub(crate) fn export(ctx: &Setup, id: &str, name: Option<&str>) -> anyhow::Result<()> {
    let lab = std::sync::Arc::new(open_lab_for_bundles(ctx, true)?);
    let id = lab_registry::RunId::parse(id)?;
    let info = lab.export(&id, name).map_err(|e| match e {
        lab_core::ExportError::Registry(e) => anyhow::Error::from(e),
        other => anyhow::Error::from(other),
    })?;
    let exports_path = lab_registry::DataDir::new(&ctx.data_dir).exports();
    println!(
        "exported {} to {} ({} bytes, {} files)",
        id,
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
    let lab = open_lab_for_bundles(ctx, false)?;
    let bundle = std::fs::File::open(file).with_context(|| format!("bundle {}", file.display()))?;
    let (run, files) = lab
        .import_bundle(std::io::BufReader::new(bundle), into)
        .map_err(|e| match e {
            lab_core::BundleImportError::Into(lab_registry::Error::Io { source, .. }) => {
                anyhow::anyhow!("--into {}: {source}", into.display())
            }
            lab_core::BundleImportError::Into(e) => explain_import(lab.registry(), e),
            lab_core::BundleImportError::NotADirectory(path) => {
                anyhow::anyhow!("--into {} is not a directory", path.display())
            }
            lab_core::BundleImportError::Bundle(e) => {
                anyhow::Error::from(e).context(format!("bundle {}", file.display()))
            }
            lab_core::BundleImportError::Registry(e) => e.into(),
        })?;
    println!(
        "imported bundle as {} at {} ({} files verified)",
        run.id,
        run.root.display(),
        files
    );
    Ok(())
}
