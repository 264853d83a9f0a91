/**
 * The API calls the schedule controller makes, each one RBAC grants it
 * (manifests/operator-rbac.yaml).
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import {
  CHECKPOINT_GROUP,
  CHECKPOINT_PLURAL,
  CHECKPOINT_SCHEDULE_PLURAL,
  CHECKPOINT_VERSION,
  isConflict,
  isNotFound,
  type Checkpoint,
  type CheckpointSchedule,
  type CheckpointScheduleStatus,
} from '@cryo/common';

export class ScheduleKube {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async listPods(namespace: string, labelSelector: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, ...(labelSelector === '' ? {} : { labelSelector }) })).items;
  }

  createCheckpoint(checkpoint: Checkpoint): Promise<Checkpoint> {
    const namespace = checkpoint.metadata!.namespace!;
    return this.custom.createNamespacedCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, namespace, body: checkpoint }) as Promise<Checkpoint>;
  }

  getCheckpoint(namespace: string, name: string): Promise<Checkpoint> {
    return this.custom.getNamespacedCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, namespace, name }) as Promise<Checkpoint>;
  }

  /** Deletes only the Checkpoint of this uid (not a later one of the same name); false when it is gone already. */
  async deleteCheckpoint(namespace: string, name: string, uid: string): Promise<boolean> {
    try {
      await this.custom.deleteNamespacedCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, namespace, name, body: { preconditions: { uid } } });
      return true;
    } catch (error) {
      // 409: the uid precondition failed, so that Checkpoint is gone and another has its name.
      if (isNotFound(error) || isConflict(error)) return false;
      throw error;
    }
  }

  getSchedule(namespace: string, name: string): Promise<CheckpointSchedule> {
    return this.custom.getNamespacedCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_SCHEDULE_PLURAL, namespace, name }) as Promise<CheckpointSchedule>;
  }

  /** Replaces the status, checked against the schedule's resourceVersion: a lost race is a 409. */
  writeStatus(schedule: CheckpointSchedule, status: CheckpointScheduleStatus): Promise<CheckpointSchedule> {
    return this.custom.replaceNamespacedCustomObjectStatus({
      group: CHECKPOINT_GROUP,
      version: CHECKPOINT_VERSION,
      plural: CHECKPOINT_SCHEDULE_PLURAL,
      namespace: schedule.metadata!.namespace!,
      name: schedule.metadata!.name!,
      body: { ...schedule, status },
    }) as Promise<CheckpointSchedule>;
  }
}
