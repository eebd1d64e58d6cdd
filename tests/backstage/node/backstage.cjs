// Runs Backstage's own code on what the portal produces (driven by tests/backstage):
//   node backstage.cjs render <cases.json>    - every case: the template's template.yaml run by
//     the real NunjucksWorkflowRunner (step input rendering, `each`) with the real fetch:template
//     action; the publish step is replaced by a step that copies the workspace to
//     <out>/<publish targetPath>, i.e. where the pull request would put it.
//   node backstage.cjs validate <entities.json> - every entity through catalog-model's kind
//     validators (and scaffolder-common's Template validator) and the catalog's default entity
//     policies; every entity ref in spec resolved.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const yaml = require('yaml');

function logger() {
  const log = { info() {}, warn() {}, debug() {}, error(...args) { console.error(...args); } };
  log.child = () => log;
  return log;
}

async function render(casesFile) {
  const { ConfigReader } = require('@backstage/config');
  const { ScmIntegrations } = require('@backstage/integration');
  const { createFetchTemplateAction } = require('@backstage/plugin-scaffolder-backend');
  // The workflow runner is not exported; it is the code a Backstage instance runs.
  const backendDir = path.dirname(require.resolve('@backstage/plugin-scaffolder-backend'));
  const { NunjucksWorkflowRunner } = require(
    path.join(backendDir, 'scaffolder/tasks/NunjucksWorkflowRunner.cjs.js'));

  const integrations = ScmIntegrations.fromConfig(new ConfigReader({}));
  const reader = {
    // Templates are read from file:// locations, which fetch:template copies without a reader.
    readUrl() { throw new Error('no URL reading in this test'); },
    readTree() { throw new Error('no URL reading in this test'); },
    search() { throw new Error('no URL reading in this test'); },
  };
  const fetchTemplate = createFetchTemplateAction({ reader, integrations });
  const extract = {
    id: 'caas:extract',
    supportsDryRun: true,
    async handler(ctx) {
      fs.cpSync(ctx.workspacePath, path.join(ctx.input.out, ctx.input.targetPath),
        { recursive: true });
    },
  };
  const actions = new Map([[fetchTemplate.id, fetchTemplate], [extract.id, extract]]);
  const workingDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'caas-backstage-'));
  const runner = new NunjucksWorkflowRunner({
    actionRegistry: {
      async get(id) {
        if (!actions.has(id)) throw new Error(`unknown action ${id}`);
        return actions.get(id);
      },
      async list() { return [...actions.values()]; },
    },
    integrations,
    workingDirectory,
    logger: logger(),
    // MetricsService: the runner records counters and histograms; nothing reads them here.
    metrics: {
      createCounter: () => ({ add() {} }),
      createHistogram: () => ({ record() {} }),
      createUpDownCounter: () => ({ add() {} }),
      createGauge: () => ({ record() {} }),
    },
  });
  const cases = JSON.parse(fs.readFileSync(casesFile, 'utf8'));
  const results = [];
  let n = 0;
  for (const item of cases) {
    const doc = yaml.parse(fs.readFileSync(path.join(item.template, 'template.yaml'), 'utf8'));
    const steps = doc.spec.steps.map(step => {
      if (step.action !== 'publish:github:pull-request') return step;
      return { id: step.id, name: step.name, action: 'caas:extract',
               input: { targetPath: step.input.targetPath, out: item.out } };
    });
    n += 1;
    const task = {
      taskId: `case-${n}`,
      spec: {
        apiVersion: doc.apiVersion,
        steps,
        output: {},
        parameters: item.parameters,
        templateInfo: { entityRef: `template:default/${doc.metadata.name}`,
                        baseUrl: `file://${path.join(item.template, 'template.yaml')}` },
      },
      secrets: {},
      createdBy: 'user:default/test',
      cancelSignal: new AbortController().signal,
      isDryRun: false,
      done: false,
      async getWorkspaceName() { return `case-${n}`; },
      async emitLog() {},
      async complete() {},
      async getInitiatorCredentials() { return { $$type: '@backstage/BackstageCredentials',
                                                   principal: { type: 'none' } }; },
    };
    try {
      await runner.execute(task);
      results.push({ out: item.out, ok: true });
    } catch (error) {
      results.push({ out: item.out, ok: false, error: String(error && error.stack || error) });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

async function validate(entitiesFile) {
  const model = require('@backstage/catalog-model');
  const { templateEntityV1beta3Validator } = require('@backstage/plugin-scaffolder-common');
  const entities = JSON.parse(fs.readFileSync(entitiesFile, 'utf8'));
  const validators = [
    model.componentEntityV1alpha1Validator, model.groupEntityV1alpha1Validator,
    model.userEntityV1alpha1Validator, model.resourceEntityV1alpha1Validator,
    model.systemEntityV1alpha1Validator, model.domainEntityV1alpha1Validator,
    model.apiEntityV1alpha1Validator, model.locationEntityV1alpha1Validator,
    templateEntityV1beta3Validator,
  ];
  // The catalog backend's default policies (DefaultCatalogProcessingEngine / CatalogBuilder).
  const policy = model.EntityPolicies.allOf([
    new model.SchemaValidEntityPolicy(),
    new model.DefaultNamespaceEntityPolicy(),
    new model.NoForeignRootFieldsEntityPolicy(),
    new model.FieldFormatEntityPolicy(),
  ]);
  const known = new Set(entities.map(e => model.stringifyEntityRef(e)));
  // Spec fields Backstage derives relations from, with the kind a bare name defaults to.
  const refFields = { owner: 'Group', system: 'System', domain: 'Domain', parent: 'Group',
                      children: 'Group', members: 'User', memberOf: 'Group',
                      dependsOn: undefined, dependencyOf: undefined, partOf: undefined,
                      providesApis: 'API', consumesApis: 'API' };
  const problems = [];
  for (const entity of entities) {
    const name = `${entity.kind}:${entity.metadata && entity.metadata.name}`;
    try {
      const out = await policy.enforce(entity);
      if (!out) throw new Error('refused by the default policies');
      const results = await Promise.all(validators.map(v => v.check(entity)));
      if (!results.some(Boolean)) throw new Error(`no kind validator accepts ${entity.apiVersion} ${entity.kind}`);
      for (const [field, defaultKind] of Object.entries(refFields)) {
        const value = entity.spec && entity.spec[field];
        if (value === undefined) continue;
        for (const raw of Array.isArray(value) ? value : [value]) {
          const ref = model.stringifyEntityRef(model.parseEntityRef(raw, {
            defaultKind, defaultNamespace: entity.metadata.namespace || 'default' }));
          if (!known.has(ref)) throw new Error(`spec.${field} ${raw} (${ref}) is not in the export`);
        }
      }
    } catch (error) {
      problems.push(`${name}: ${error.message}`);
    }
  }
  process.stdout.write(JSON.stringify({ checked: entities.length, problems }));
}

const [mode, file] = process.argv.slice(2);
(mode === 'render' ? render(file) : validate(file)).catch(error => {
  console.error(error);
  process.exit(1);
});
